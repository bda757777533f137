// The staging layout that `bundle inject` writes and both quiescectl and
// the shim recover from (vfs/inject_staging.h): the manifest's format,
// which staging directories are a dead injection's, and what recovery
// removes and keeps. Links quiesce_gecko_files and GoogleTest only.
#include "inject_staging.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "gecko_body_id.h"

namespace quiesce {
namespace {

namespace fs = std::filesystem;

constexpr char kIdA[] = "{fa76a194-bea1-4720-a275-2c6fdd11908d}";
constexpr char kIdB[] = "{80eaa968-8429-49fc-9951-797671e9860a}";
constexpr char kIdC[] = "{0b2d3a1e-5f44-4c1a-9b7e-3d2f1a0c9e01}";

// The pid of a process that has exited and been reaped.
pid_t DeadPid() {
  const pid_t child = fork();
  if (child == 0) _exit(0);
  int status = 0;
  waitpid(child, &status, 0);
  return child;
}

class Profile : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* tmp = std::getenv("TMPDIR");
    std::string tmpl = std::string(tmp != nullptr ? tmp : "/tmp") +
                       "/inject-staging-test-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    root_ = tmpl;
    cache_dir_ = root_ / "storage" / "default" / "http+++a.example" / "cache";
    other_cache_dir_ =
        root_ / "storage" / "default" / "http+++b.example" / "cache";
    fs::create_directories(cache_dir_);
    fs::create_directories(other_cache_dir_);
  }
  void TearDown() override { fs::remove_all(root_); }

  fs::path Body(const fs::path& cache_dir, const char* id) {
    return cache_dir / *MorguePathOfBodyId(id);
  }
  void PutBody(const fs::path& cache_dir, const char* id) {
    fs::create_directories(Body(cache_dir, id).parent_path());
    std::ofstream(Body(cache_dir, id)) << "body";
  }
  // A staging directory named for `pid`, with a manifest unless
  // `manifest` is empty.
  fs::path Staging(pid_t pid, const std::string& manifest) {
    const fs::path dir = StagingRoot(cache_dir_) /
                         ("inject-" + std::to_string(pid) + "-abcdef");
    fs::create_directories(dir);
    if (!manifest.empty()) std::ofstream(dir / "manifest") << manifest;
    return dir;
  }

  fs::path root_;
  fs::path cache_dir_;
  fs::path other_cache_dir_;
};

TEST(StagingManifest, FormatThenParseGivesItBack) {
  const StagingManifest m{"/p/storage/default/o/cache", 42, {kIdA, kIdB},
                          {kIdC}};
  const auto parsed = ParseStagingManifest(FormatStagingManifest(m));
  ASSERT_TRUE(parsed.has_value());
  EXPECT_EQ(parsed->cache_dir, m.cache_dir);
  EXPECT_EQ(parsed->fill_cache_id, 42);
  EXPECT_EQ(parsed->body_ids, m.body_ids);
  EXPECT_EQ(parsed->replaced_ids, m.replaced_ids);
}

TEST(StagingManifest, AnythingElseIsNotAManifest) {
  const std::string head = "quiesce-inject-staging 2\ncache_dir /c\n";
  for (const std::string& bad : {
           std::string(),
           std::string("quiesce-inject-staging 1\ncache_dir /c\n"),
           std::string("quiesce-inject-staging 2\n"),
           std::string("quiesce-inject-staging 2\ncache_dir \n"),
           std::string("quiesce-inject-staging 2\ncachedir /c\n"),
           head + kIdA,  // cut short: no final newline
           head + "../../etc/passwd\n",
           head + "replaced ../x\n",
           head + "replaced\n",
           head + std::string(kIdA).substr(0, 37) + "\n",
           head + "fill_cache \n",
           head + "fill_cache 0\n",
           head + "fill_cache -3\n",
           head + "fill_cache 12x\n",
           head + "fill_cache 99999999999999999999\n",
           head + "fill_cache 1\nfill_cache 2\n",
           std::string("{\"format\":\"quiesce-inject-staging\"}"),
       }) {
    EXPECT_FALSE(ParseStagingManifest(bad).has_value()) << bad;
  }
  EXPECT_TRUE(ParseStagingManifest(head).has_value()) << "no bodies yet";
  // Version 3 added the fill line; a version 2 manifest still reads.
  EXPECT_TRUE(ParseStagingManifest("quiesce-inject-staging 3\ncache_dir /c\n"
                                   "fill_cache 7\n")
                  .has_value());
}

TEST(StagingOwner, OnlyAGoneProcessesInjectionIsDead) {
  EXPECT_FALSE(IsDeadInjection("inject-" + std::to_string(getpid()) + "-x"));
  EXPECT_FALSE(IsDeadInjection("inject-1-x")) << "init runs";
  EXPECT_TRUE(IsDeadInjection("inject-" + std::to_string(DeadPid()) + "-x"));
  EXPECT_FALSE(IsDeadInjection("pack-" + std::to_string(DeadPid()) + "-x"));
}

TEST_F(Profile, StagingRootIsBesideTheProfilesStorage) {
  EXPECT_EQ(StagingRoot(cache_dir_), root_ / "quiesce-staging");
}

TEST_F(Profile, RecoveryRemovesUnreferencedListedBodiesOnly) {
  PutBody(cache_dir_, kIdA);  // listed, referenced: the commit happened
  PutBody(cache_dir_, kIdB);  // listed, unreferenced: an orphan
  PutBody(cache_dir_, kIdC);  // not listed: Gecko's own, never touched
  PutBody(other_cache_dir_, kIdB);
  const pid_t dead = DeadPid();
  const fs::path ours = Staging(
      dead, FormatStagingManifest({cache_dir_.string(), 0, {kIdA, kIdB}, {}}));
  // Another origin's dead injection: left for its own origin's recovery.
  const fs::path theirs =
      StagingRoot(cache_dir_) / ("inject-" + std::to_string(dead) + "-zzz");
  fs::create_directories(theirs);
  std::ofstream(theirs / "manifest")
      << FormatStagingManifest({other_cache_dir_.string(), 0, {kIdB}, {}});
  // A live injection (this process): never touched.
  const fs::path live = Staging(
      getpid(), FormatStagingManifest({cache_dir_.string(), 0, {kIdC}, {}}));

  ASSERT_TRUE(NeedsRecovery(cache_dir_));
  const Recovery r = RecoverStaging(cache_dir_, {kIdA, kIdC}, Readers::kMaybe, {});
  EXPECT_EQ(r.directories, 1);
  EXPECT_EQ(r.bodies_removed, 1);
  EXPECT_EQ(r.bodies_kept, 1);
  EXPECT_TRUE(fs::exists(Body(cache_dir_, kIdA)));
  EXPECT_FALSE(fs::exists(Body(cache_dir_, kIdB)));
  EXPECT_TRUE(fs::exists(Body(cache_dir_, kIdC)));
  EXPECT_TRUE(fs::exists(Body(other_cache_dir_, kIdB)));
  EXPECT_FALSE(fs::exists(ours));
  EXPECT_TRUE(fs::exists(theirs));
  EXPECT_TRUE(fs::exists(live));
  EXPECT_FALSE(NeedsRecovery(cache_dir_)) << "nothing left for this origin";
}

TEST_F(Profile, ADirectoryWithoutAManifestMovedNothingAndGoes) {
  PutBody(cache_dir_, kIdA);
  const fs::path dir = Staging(DeadPid(), "");
  ASSERT_TRUE(NeedsRecovery(cache_dir_));
  const Recovery r = RecoverStaging(cache_dir_, {}, Readers::kMaybe, {});
  EXPECT_EQ(r.directories, 1);
  EXPECT_EQ(r.bodies_removed, 0);
  EXPECT_FALSE(fs::exists(dir));
  EXPECT_TRUE(fs::exists(Body(cache_dir_, kIdA)));
}

TEST_F(Profile, NothingStagedNeedsNoRecovery) {
  EXPECT_FALSE(NeedsRecovery(cache_dir_));
  const Recovery r = RecoverStaging(cache_dir_, {}, Readers::kMaybe, {});
  EXPECT_EQ(r.directories, 0);
}

// --overwrite: kIdA was the replaced entry's body, kIdB the injection's.
TEST_F(Profile, ReplacedBodiesWaitForATimeWithNoReader) {
  PutBody(cache_dir_, kIdA);
  PutBody(cache_dir_, kIdB);
  const fs::path dir = Staging(
      DeadPid(), FormatStagingManifest({cache_dir_.string(), 0, {kIdB}, {kIdA}}));
  // Committed: kIdB referenced, kIdA not. Beside a live browser's pages
  // the replaced body stays, and its directory with it.
  Recovery r = RecoverStaging(cache_dir_, {kIdB}, Readers::kMaybe, {});
  EXPECT_EQ(r.bodies_waiting, 1);
  EXPECT_EQ(r.directories, 0);
  EXPECT_TRUE(fs::exists(Body(cache_dir_, kIdA)));
  EXPECT_TRUE(fs::exists(dir));
  EXPECT_TRUE(NeedsRecovery(cache_dir_));
  // With no reader it goes, and so does the directory.
  r = RecoverStaging(cache_dir_, {kIdB}, Readers::kNone, {});
  EXPECT_EQ(r.bodies_removed, 1);
  EXPECT_EQ(r.bodies_kept, 1);
  EXPECT_EQ(r.directories, 1);
  EXPECT_FALSE(fs::exists(Body(cache_dir_, kIdA)));
  EXPECT_TRUE(fs::exists(Body(cache_dir_, kIdB)));
  EXPECT_FALSE(fs::exists(dir));
}

TEST_F(Profile, AReplacedBodyStaysWhenTheOverwriteNeverCommitted) {
  PutBody(cache_dir_, kIdA);
  PutBody(cache_dir_, kIdB);
  Staging(DeadPid(),
          FormatStagingManifest({cache_dir_.string(), 0, {kIdB}, {kIdA}}));
  // Not committed: the old entry still references kIdA; kIdB is an orphan.
  const Recovery r = RecoverStaging(cache_dir_, {kIdA}, Readers::kNone, {});
  EXPECT_TRUE(fs::exists(Body(cache_dir_, kIdA)));
  EXPECT_FALSE(fs::exists(Body(cache_dir_, kIdB)));
  EXPECT_EQ(r.bodies_removed, 1);
  EXPECT_EQ(r.directories, 1);
}

// A new cache's fill: its rows reference kIdA; kIdB was moved but not yet
// named by a row.
TEST_F(Profile, AFillWaitsForARecoveryThatCanDeleteItsRows) {
  PutBody(cache_dir_, kIdA);
  PutBody(cache_dir_, kIdB);
  const fs::path dir = Staging(
      DeadPid(),
      FormatStagingManifest({cache_dir_.string(), 9, {kIdA, kIdB}, {}}));
  EXPECT_EQ(DeadFills(cache_dir_), std::vector<int64_t>{9});
  // The shim at open, or a pack: they write no rows. The unreferenced body
  // goes; the directory stays while cache 9 is unpublished.
  Recovery r = RecoverStaging(cache_dir_, {kIdA}, Readers::kNone, {9});
  EXPECT_EQ(r.bodies_removed, 1);
  EXPECT_EQ(r.fills_waiting, 1);
  EXPECT_EQ(r.directories, 0);
  EXPECT_TRUE(fs::exists(dir));
  EXPECT_TRUE(fs::exists(Body(cache_dir_, kIdA)));
  EXPECT_TRUE(NeedsRecovery(cache_dir_));
  // After the fill's rows were deleted, its bodies are unreferenced.
  r = RecoverStaging(cache_dir_, {}, Readers::kMaybe, {});
  EXPECT_EQ(r.bodies_removed, 1);
  EXPECT_EQ(r.directories, 1);
  EXPECT_FALSE(fs::exists(Body(cache_dir_, kIdA)));
  EXPECT_FALSE(fs::exists(dir));
  EXPECT_TRUE(DeadFills(cache_dir_).empty());
}

// A fill whose rows name none of its bodies (bodiless entries, or killed
// right after its caches row went in) still holds rows that no page will
// ever see: its directory waits too, or nothing would know to delete them
// after a clean shutdown (Gecko deletes orphaned caches only after an
// unclean one).
TEST_F(Profile, AFillWithoutBodiesWaitsToo) {
  PutBody(cache_dir_, kIdB);
  const fs::path dir = Staging(
      DeadPid(), FormatStagingManifest({cache_dir_.string(), 9, {kIdB}, {}}));
  const Recovery r = RecoverStaging(cache_dir_, {}, Readers::kNone, {9});
  EXPECT_EQ(r.bodies_removed, 1);
  EXPECT_EQ(r.fills_waiting, 1);
  EXPECT_EQ(r.directories, 0);
  EXPECT_TRUE(fs::exists(dir));
  EXPECT_EQ(DeadFills(cache_dir_), std::vector<int64_t>{9});
}

TEST_F(Profile, APublishedFillDoesNotWait) {
  PutBody(cache_dir_, kIdA);
  const fs::path dir = Staging(
      DeadPid(), FormatStagingManifest({cache_dir_.string(), 9, {kIdA}, {}}));
  // Killed after the publish: cache 9 has its storage row.
  const Recovery r = RecoverStaging(cache_dir_, {kIdA}, Readers::kNone, {4});
  EXPECT_EQ(r.fills_waiting, 0);
  EXPECT_EQ(r.bodies_kept, 1);
  EXPECT_EQ(r.directories, 1);
  EXPECT_FALSE(fs::exists(dir));
  EXPECT_TRUE(fs::exists(Body(cache_dir_, kIdA)));
}

}  // namespace
}  // namespace quiesce
