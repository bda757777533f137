// kill -9 of the Gecko-like host at four points of `bundle inject` (issue
// #14: a crash after the bodies were staged into morgue/ and before the
// rows committed left hundreds of unreferenced bodies there, which broke
// Gecko's next session): staged, moved into morgue/, part of a new cache
// filled but not published, committed. At each point the host is killed;
// then either `bundle recover` runs with the host down (as a user might
// before restarting the browser), or nothing does and the host simply
// restarts (the shim cleans up at its open of caches.sqlite, before the
// host's own cleanup after an unclean shutdown runs, which here does what
// Gecko's does: deletes orphaned caches, then unreferenced bodies, the
// latter being what wraps Gecko's quota usage). Either way the profile
// must then hold all or none of the bundle and no body of any injection
// that no row references, the host's cleanup must have found none of
// ours unreferenced, and the next point is tried on the same profile, so
// orphans cannot pile up across crashes.
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "gecko_names.h"
#include "op_log.h"
#include "subprocess.h"
#include "support.h"

namespace quiesce::testing {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

constexpr char kOrigin[] = "http://127.0.0.1:8000";

// The host's caches.sqlite once the host has it open; with `committed`,
// once the host has also committed through it (so its open, and the shim's
// cleanup before it, are over: the shim's own connection for that cleanup
// lists the database before the host's open returns).
std::string WaitForCacheDb(const std::string& ctl, const std::string& socket,
                           bool committed = false) {
  for (int i = 0; i < 200; ++i) {
    const Finished list =
        RunProgram({ctl, "--socket", socket, "--json", "list"}, 5s);
    if (list.exit_code == 0) {
      const json parsed = json::parse(list.out, nullptr, false);
      if (!parsed.is_discarded()) {
        for (const json& db : parsed.value("databases", json::array())) {
          const std::string path = db.value("path", "");
          if (path.ends_with("/cache/caches.sqlite") &&
              (!committed || db.value("last_commit_us", 0ull) > 0)) {
            return path;
          }
        }
      }
    }
    std::this_thread::sleep_for(50ms);
  }
  return "";
}

bool WaitForFile(const std::string& path) {
  for (int i = 0; i < 600; ++i) {
    if (fs::exists(path)) return true;
    std::this_thread::sleep_for(50ms);
  }
  return false;
}

// Body ids listed by the staging manifests under the profile as the
// injections' own (vfs/inject_staging.h).
std::set<std::string> ManifestBodyIds(const fs::path& profile) {
  std::set<std::string> ids;
  std::error_code ec;
  for (fs::directory_iterator it(profile / "quiesce-staging", ec), end;
       !ec && it != end; it.increment(ec)) {
    std::ifstream in(it->path() / "manifest");
    std::string line;
    while (std::getline(in, line)) {
      if (bundle::IsBodyId(line)) ids.insert(line);
    }
  }
  return ids;
}

struct DiskState {
  int64_t copy_entries = -1;  // entries of the injected cache; -1: none
  std::set<std::string> copy_bodies;  // body ids the injected cache's rows
                                      // reference
  std::set<std::string> referenced;  // body ids rows reference
  int64_t orphaned_caches = -1;  // caches that no storage row names
};

DiskState ReadDisk(const std::string& db_path, const std::string& cache) {
  DiskState s;
  sqlite3* db = nullptr;
  // Read-only: the host may be running (a WAL reader beside it, waiting
  // out the locks of its start).
  EXPECT_EQ(sqlite3_open_v2(db_path.c_str(), &db, SQLITE_OPEN_READONLY,
                            nullptr),
            SQLITE_OK);
  sqlite3_busy_timeout(db, 10000);
  sqlite3_stmt* st = nullptr;
  // The cache name is UTF-16LE in storage.key.
  std::string key;
  for (char c : cache) key += std::string{c, '\0'};
  sqlite3_prepare_v2(db,
                     "SELECT (SELECT count(*) FROM entries e WHERE "
                     "e.cache_id = s.cache_id) FROM storage s WHERE key = ?",
                     -1, &st, nullptr);
  sqlite3_bind_blob(st, 1, key.data(), static_cast<int>(key.size()),
                    SQLITE_TRANSIENT);
  const int rc = sqlite3_step(st);
  EXPECT_TRUE(rc == SQLITE_ROW || rc == SQLITE_DONE) << sqlite3_errmsg(db);
  if (rc == SQLITE_ROW) s.copy_entries = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  sqlite3_prepare_v2(db,
                     "SELECT e.response_body_id FROM entries e JOIN storage s "
                     "ON e.cache_id = s.cache_id WHERE s.key = ? AND "
                     "e.response_body_id IS NOT NULL",
                     -1, &st, nullptr);
  sqlite3_bind_blob(st, 1, key.data(), static_cast<int>(key.size()),
                    SQLITE_TRANSIENT);
  while (sqlite3_step(st) == SQLITE_ROW) {
    s.copy_bodies.insert(
        reinterpret_cast<const char*>(sqlite3_column_text(st, 0)));
  }
  sqlite3_finalize(st);
  sqlite3_prepare_v2(db,
                     "SELECT response_body_id FROM entries WHERE "
                     "response_body_id IS NOT NULL",
                     -1, &st, nullptr);
  int step = SQLITE_ROW;
  while ((step = sqlite3_step(st)) == SQLITE_ROW) {
    s.referenced.insert(
        reinterpret_cast<const char*>(sqlite3_column_text(st, 0)));
  }
  EXPECT_EQ(step, SQLITE_DONE) << sqlite3_errmsg(db);
  sqlite3_finalize(st);
  sqlite3_prepare_v2(db,
                     "SELECT count(*) FROM caches WHERE id NOT IN "
                     "(SELECT cache_id FROM storage)",
                     -1, &st, nullptr);
  EXPECT_EQ(sqlite3_step(st), SQLITE_ROW) << sqlite3_errmsg(db);
  s.orphaned_caches = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  sqlite3_close(db);
  return s;
}

// Expects none of an abandoned fill's `staged` bodies to be named by a
// row (`after`) or left in the morgue/ of `db_path`.
void ExpectFillGone(const std::string& db_path, const DiskState& after,
                    const std::set<std::string>& staged) {
  const fs::path cache_dir = fs::path(db_path).parent_path();
  for (const std::string& id : staged) {
    EXPECT_EQ(after.referenced.count(id), 0u) << "the fill's rows stayed";
    EXPECT_FALSE(fs::exists(cache_dir / *bundle::MorguePathOfBodyId(id)))
        << "the fill's body " << id << " stayed";
  }
}

// A Gecko-like host (hostsim --gecko, writing) on a profile of its own,
// killed with -9 and started again by the tests.
struct CrashHost {
  CrashHost()
      : profile(dir.File("profile")),
        socket(dir.File("host.sock")),
        argv({hostsim, "--gecko", "--dir", profile.string(), "--socket",
              socket, "--writable", "--seconds", "120", "--rate", "50",
              "--urls", "40", "--body-size", "3000"}) {}
  // (Re)starts the host; its caches.sqlite, "" when it never showed. See
  // WaitForCacheDb for `committed`.
  std::string Start(bool committed = false) {
    process = std::make_unique<Background>(argv, dir.File("host.out"));
    return WaitForCacheDb(ctl, socket, committed);
  }
  void Kill() { process->Kill(); }
  // `bundle inject BUNDLE --rename CACHE`, started so that it stops at
  // `point` and creates `pause` there (QUIESCECTL_TEST_PAUSE); it goes on
  // when `pause` is removed.
  std::unique_ptr<Background> InjectPausingAt(const std::string& point,
                                              const std::string& bundle,
                                              const std::string& cache,
                                              const std::string& pause) const {
    setenv("QUIESCECTL_TEST_PAUSE", (point + ":" + pause).c_str(), 1);
    auto inject = std::make_unique<Background>(
        std::vector<std::string>{ctl, "--socket", socket, "bundle", "inject",
                                 bundle, "--rename", cache},
        dir.File("inject-" + cache + ".out"));
    unsetenv("QUIESCECTL_TEST_PAUSE");
    return inject;
  }
  // The host's output once its cleanup after an unclean start has
  // reported (its last line of that cleanup; it commits its deletions
  // before it prints, so a restart that has committed may not have yet).
  std::string UncleanStartOutput() const {
    std::string out;
    for (int i = 0; i < 600; ++i) {
      std::ifstream in(dir.File("host.out"));
      out.assign(std::istreambuf_iterator<char>(in),
                 std::istreambuf_iterator<char>());
      if (out.find("hostsim: unclean start of") != std::string::npos) break;
      std::this_thread::sleep_for(50ms);
    }
    return out;
  }
  // Packs the host's own cache into `bundle` once it holds at least
  // kPackedEntries entries (so an inject of it fills in several steps);
  // the exit code of the last pack (4, no such cache, until the host's
  // first put made it).
  int PackOwnCache(const std::string& bundle) const {
    constexpr int64_t kPackedEntries = 20;
    int packed = 4;
    int64_t entries = 0;
    for (int i = 0; i < 200 && (packed == 4 || (packed == 0 &&
                                                entries < kPackedEntries));
         ++i) {
      if (i > 0) std::this_thread::sleep_for(50ms);
      const Finished run = RunProgram(
          {ctl, "--socket", socket, "--json", "bundle", "pack", "--force",
           "--origin", kOrigin, "--cache", "hostsim-v1", "-o", bundle},
          30s);
      packed = run.exit_code;
      entries = json::parse(run.out, nullptr, false).value("entries", 0);
    }
    return entries >= kPackedEntries ? packed : -1;
  }

  const std::string hostsim = ProgramFromEnv("HOSTSIM");
  const std::string ctl = ProgramFromEnv("QUIESCECTL");
  TempDir dir;
  const fs::path profile;
  const std::string socket;
  const std::vector<std::string> argv;
  std::unique_ptr<Background> process;
};

enum class CleanUp { kBundleRecover, kHostRestart };

// Every test's start: a CrashHost that writes, with its own cache packed
// into bundle_.
class GeckoHostInjectCrash : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(host_.hostsim.empty() || host_.ctl.empty());
    db_path_ = host_.Start(true);
    ASSERT_FALSE(db_path_.empty());
    bundle_ = host_.dir.File("b.zip");
    ASSERT_EQ(host_.PackOwnCache(bundle_), 0);
  }
  void KillAtEachPoint(CleanUp clean_up);

  CrashHost host_;
  std::string db_path_;
  std::string bundle_;
};

void GeckoHostInjectCrash::KillAtEachPoint(CleanUp clean_up) {
  const std::string& ctl = host_.ctl;
  const fs::path& profile = host_.profile;
  TempDir& dir = host_.dir;

  const char* points[] = {"staged", "moved", "filling", "committed"};
  std::set<std::string> all_staged;
  for (const char* point : points) {
    SCOPED_TRACE(point);
    const std::string cache = std::string("copy-") + point;
    const std::string pause = dir.File(std::string("paused-") + point);
    const auto inject = host_.InjectPausingAt(point, bundle_, cache, pause);
    ASSERT_TRUE(WaitForFile(pause)) << "inject never reached " << point;
    host_.Kill();  // kill -9 of the "browser" at this point
    inject->Kill();
    const std::set<std::string> staged = ManifestBodyIds(profile);
    EXPECT_FALSE(staged.empty()) << "no manifest at " << point;
    all_staged.insert(staged.begin(), staged.end());

    if (clean_up == CleanUp::kBundleRecover) {
      // With the host down, as before a browser restart.
      const Finished recover = RunProgram(
          {ctl, "--json", "bundle", "recover", "--profile", profile.string()},
          30s);
      ASSERT_EQ(recover.exit_code, 0) << recover.out;
    }
    // Every point before the publish has made the fill's caches row.
    const bool unpublished = std::string(point) != "committed";
    if (clean_up == CleanUp::kHostRestart) {
      // The restart's open of caches.sqlite is what cleans up; the disk is
      // then read with the host down again, as after the recover.
      ASSERT_FALSE(host_.Start(true).empty()) << "no restart";
      const std::string out = host_.UncleanStartOutput();
      host_.Kill();
      ASSERT_NE(out.find("hostsim: unclean start of"), std::string::npos)
          << "the restart did not clean up after the kill: " << out;
      for (const std::string& id : all_staged) {
        EXPECT_EQ(out.find("unreferenced body " + id), std::string::npos)
            << "the host's unclean start met our orphan " << id;
      }
      if (unpublished) {
        // The unpublished fill is an orphaned cache: the host's cleanup
        // deleted it, bodies and all.
        EXPECT_NE(out.find(": 1 orphaned caches deleted"), std::string::npos)
            << out;
      }
    }
    const DiskState disk = ReadDisk(db_path_, cache);
    const bool committed = std::string(point) == "committed";
    if (committed) {
      EXPECT_GT(disk.copy_entries, 0) << "the committed injection is gone";
    } else {
      EXPECT_EQ(disk.copy_entries, -1) << "rows of an uncommitted injection";
    }
    // No body of any injection so far lies in morgue/ unreferenced, and
    // every referenced one is there.
    for (const std::string& id : all_staged) {
      const fs::path body = fs::path(db_path_).parent_path() /
                            *bundle::MorguePathOfBodyId(id);
      EXPECT_EQ(fs::exists(body), disk.referenced.count(id) > 0)
          << body << (disk.referenced.count(id) ? " missing" : " orphaned");
    }
    std::error_code ec;
    if (unpublished && clean_up == CleanUp::kHostRestart) {
      // The shim writes no rows: the fill's directory waits for the next
      // bundle inject (the next point's), which finds its rows gone. The
      // last point's finds it empty.
      EXPECT_FALSE(fs::is_empty(profile / "quiesce-staging", ec));
    } else {
      EXPECT_TRUE(fs::is_empty(profile / "quiesce-staging", ec))
          << "staging directories left";
    }

    ASSERT_FALSE(host_.Start().empty()) << "no restart";
  }
  host_.Kill();
}

// --overwrite replaces a cache whose bodies a page may still be reading:
// they stay in morgue/ while the host runs, and are gone once the host
// restarted (after a kill -9: the unclean start whose Gecko cleanup they
// must not meet), while the new ones stay.
TEST_F(GeckoHostInjectCrash, ReplacedBodiesGoAtTheNextStartNotBefore) {
  const std::string& ctl = host_.ctl;
  const std::string& socket = host_.socket;
  auto inject = [&](bool overwrite) {
    std::vector<std::string> argv = {ctl,      "--socket", socket,   "bundle",
                                     "inject", bundle_,    "--rename", "copy"};
    if (overwrite) argv.push_back("--overwrite");
    return RunProgram(argv, 30s).exit_code;
  };
  ASSERT_EQ(inject(false), 0);
  const std::set<std::string> first = ReadDisk(db_path_, "copy").copy_bodies;
  ASSERT_EQ(inject(true), 0);
  const DiskState after = ReadDisk(db_path_, "copy");
  // The first copy's bodies: the overwrite's new entries have new ones.
  std::set<std::string> replaced;
  for (const std::string& id : first) {
    if (!after.referenced.count(id)) replaced.insert(id);
  }
  EXPECT_EQ(replaced, first);
  ASSERT_FALSE(replaced.empty());
  const fs::path cache_dir = fs::path(db_path_).parent_path();
  auto body = [&](const std::string& id) {
    return cache_dir / *bundle::MorguePathOfBodyId(id);
  };
  for (const std::string& id : replaced) {
    EXPECT_TRUE(fs::exists(body(id))) << "removed while a page may read it";
  }
  host_.Kill();
  ASSERT_FALSE(host_.Start(true).empty()) << "no restart";
  for (const std::string& id : replaced) {
    EXPECT_FALSE(fs::exists(body(id))) << "left for Gecko's cleanup";
  }
  const DiskState restarted = ReadDisk(db_path_, "copy");
  EXPECT_EQ(restarted.copy_bodies, after.copy_bodies);
  for (const std::string& id : restarted.copy_bodies) {
    EXPECT_TRUE(fs::exists(body(id))) << "a referenced body went";
  }
  std::error_code ec;
  EXPECT_TRUE(fs::is_empty(host_.profile / "quiesce-staging", ec))
      << "staging directories left";
  host_.Kill();
}

// quiescectl alone killed in the middle of filling a new cache, the host
// running on: the unpublished fill's rows and bodies stay until the next
// `bundle inject` of the origin, which deletes them before its own.
TEST_F(GeckoHostInjectCrash, AKilledInjectorsFillGoesWithTheNextInject) {
  const std::string pause = host_.dir.File("paused");
  const auto killed = host_.InjectPausingAt("filling", bundle_, "lost", pause);
  ASSERT_TRUE(WaitForFile(pause));
  killed->Kill();
  const std::set<std::string> staged = ManifestBodyIds(host_.profile);
  ASSERT_FALSE(staged.empty());
  const DiskState left = ReadDisk(db_path_, "lost");
  EXPECT_EQ(left.copy_entries, -1) << "a page could see the fill";
  size_t filled = 0;
  for (const std::string& id : staged) filled += left.referenced.count(id);
  EXPECT_GT(filled, 0u) << "no rows filled before the kill";

  const Finished next =
      RunProgram({host_.ctl, "--socket", host_.socket, "--json", "bundle",
                  "inject", bundle_, "--rename", "found"},
                 30s);
  ASSERT_EQ(next.exit_code, 0) << next.out;
  const DiskState after = ReadDisk(db_path_, "found");
  EXPECT_GT(after.copy_entries, 0);
  ExpectFillGone(db_path_, after, staged);
  EXPECT_EQ(after.orphaned_caches, 0) << "an orphaned cache is left";
  std::error_code ec;
  EXPECT_TRUE(fs::is_empty(host_.profile / "quiesce-staging", ec));
  host_.Kill();
}

// The page makes a cache of the injected name while the fill runs: the
// publish fails on the storage key, and the fill goes (rows and bodies),
// leaving the page's cache as it made it.
TEST_F(GeckoHostInjectCrash, APublishThatLosesTheNameLeavesNothing) {
  const std::string pause = host_.dir.File("paused");
  const auto inject = host_.InjectPausingAt("filling", bundle_, "taken", pause);
  ASSERT_TRUE(WaitForFile(pause));
  const std::set<std::string> staged = ManifestBodyIds(host_.profile);
  ASSERT_FALSE(staged.empty());
  // The page's cache "taken" (storage keys are UTF-16LE), made through
  // the host's own gate.
  const std::string sql = host_.dir.File("taken.sql");
  std::ofstream(sql) << "INSERT INTO caches DEFAULT VALUES;\n"
                        "INSERT INTO storage (namespace, key, cache_id) "
                        "VALUES (0, x'740061006B0065006E00', "
                        "last_insert_rowid());\n";
  const Finished made =
      RunProgram({host_.ctl, "--socket", host_.socket, "inject", db_path_, sql},
                 30s);
  ASSERT_EQ(made.exit_code, 0) << made.out;
  fs::remove(pause);  // inject goes on to the publish
  EXPECT_NE(inject->Wait(60s), 0) << "the publish should have failed";

  const DiskState after = ReadDisk(db_path_, "taken");
  EXPECT_EQ(after.copy_entries, 0) << "the page's cache is not as it made it";
  ExpectFillGone(db_path_, after, staged);
  std::error_code ec;
  EXPECT_TRUE(fs::is_empty(host_.profile / "quiesce-staging", ec));
  host_.Kill();
}

TEST_F(GeckoHostInjectCrash, KillAtEachPointThenBundleRecoverLeavesNoOrphans) {
  KillAtEachPoint(CleanUp::kBundleRecover);
}

TEST_F(GeckoHostInjectCrash, KillAtEachPointThenRestartLeavesNoOrphans) {
  KillAtEachPoint(CleanUp::kHostRestart);
}

}  // namespace
}  // namespace quiesce::testing
