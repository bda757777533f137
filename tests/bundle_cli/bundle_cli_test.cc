// quiescectl bundle ls|pack|inject end to end: this test process is the
// host (the shim, a control server, Gecko cache databases copied from a
// real Firefox and kept open through the shim), quiescectl runs as a child
// process against it, and what it packed and injected is checked through
// the host's own connections.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <map>
#include <set>
#include <thread>

#include "bundle_fixture.h"
#include "context.h"
#include "gecko_names.h"
#include "nlohmann/json.hpp"
#include "server.h"

extern char** environ;

namespace quiesce::testing {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr char kOriginDir[] = "http+++127.0.0.1+8765";

struct CtlRun {
  int exit_code = -1;
  std::string out, err;
};

fs::path OriginCacheDir(const fs::path& profile) {
  return profile / "storage" / "default" / kOriginDir / "cache";
}

// Every .final body file under a cache directory's morgue/.
std::set<fs::path> MorgueFiles(const fs::path& cache_dir) {
  std::set<fs::path> files;
  for (const auto& e : fs::recursive_directory_iterator(cache_dir / "morgue")) {
    if (e.is_regular_file()) files.insert(e.path());
  }
  return files;
}

class BundleCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    fixture_ = FixtureCacheDir("clean");
    if (!fixture_) {
      GTEST_SKIP() << "Firefox fixtures not found: set QUIESCE_FIXTURES to "
                      "shared/fixtures/firefox-esr-153";
    }
    const char* ctl = std::getenv("QUIESCECTL");
    ASSERT_NE(ctl, nullptr) << "QUIESCECTL names the quiescectl to test";
    quiescectl_ = ctl;
    RegisterShims();
    root_ = fs::canonical(dir_.path());
    // Three profiles with the same origin: the source, a writable target
    // and a target the host does not let clients write.
    for (const char* profile : {"source", "target", "readonly"}) {
      const fs::path origin_dir = OriginCacheDir(root_ / profile).parent_path();
      fs::create_directories(origin_dir);
      CopyFixture(*fixture_, origin_dir, "cache");
      conns_[profile] = std::make_unique<Conn>(Db(profile));
      // The host commits once, as Gecko does when it opens a cache: the
      // shim's snapshot of a database whose WAL is still empty after
      // open reads its size from the empty wal-index (0 pages) and comes
      // out empty (reported to vfs/).
      conns_[profile]->Must(
          "BEGIN IMMEDIATE; INSERT INTO caches DEFAULT VALUES; DELETE FROM "
          "caches WHERE id = last_insert_rowid(); COMMIT");
      ASSERT_EQ(conns_[profile]->Int("SELECT count(*) FROM entries"),
                kFixtureEntries);
    }
    control::ServerOptions options;
    options.socket = (root_ / "s.sock").string();
    options.policy = {geteuid(), {}, (root_ / "target" / "*" / "*" / "*" /
                                      "cache" / "caches.sqlite").string()};
    Result<std::unique_ptr<control::Server>> server =
        control::Server::Start(Context::Get(), options);
    ASSERT_TRUE(server.ok()) << server.error().message;
    server_ = std::move(server.value());
  }

  std::string Db(const std::string& profile) const {
    return (OriginCacheDir(root_ / profile) / "caches.sqlite").string();
  }

  // Runs quiescectl --socket S ARGS..., capturing its output.
  CtlRun Ctl(std::vector<std::string> args) {
    args.insert(args.begin(), {quiescectl_, "--socket", server_->socket()});
    const std::string out = (root_ / "ctl.out").string();
    const std::string err = (root_ / "ctl.err").string();
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, out.c_str(),
                                     O_WRONLY | O_CREAT | O_TRUNC, 0600);
    posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, err.c_str(),
                                     O_WRONLY | O_CREAT | O_TRUNC, 0600);
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    pid_t pid = 0;
    CtlRun run;
    const int rc = posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(),
                               environ);
    posix_spawn_file_actions_destroy(&actions);
    EXPECT_EQ(rc, 0) << "cannot run " << argv[0];
    if (rc != 0) return run;
    int status = 0;
    waitpid(pid, &status, 0);
    run.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128;
    run.out = ReadFile(out);
    run.err = ReadFile(err);
    return run;
  }

  std::optional<fs::path> fixture_;
  std::string quiescectl_;
  TempDir dir_;
  fs::path root_;
  std::map<std::string, std::unique_ptr<Conn>> conns_;
  std::unique_ptr<control::Server> server_;  // stops before conns_ close
};

TEST_F(BundleCliTest, LsListsTheOriginsCaches) {
  CtlRun run = Ctl({"--json", "bundle", "ls", "--origin",
                    "http://127.0.0.1:8765/some/page?x", "--profile",
                    (root_ / "source").string()});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  const json out = json::parse(run.out);
  EXPECT_EQ(out["origin"], kOrigin);
  EXPECT_EQ(out["database"], Db("source"));
  ASSERT_EQ(out["caches"].size(), 1u) << run.out;
  EXPECT_EQ(out["caches"][0]["name"], kCacheName);
  EXPECT_EQ(out["caches"][0]["entries"], kFixtureEntries);
  EXPECT_GT(out["caches"][0]["body_bytes"].get<int64_t>(), 0);

  run = Ctl({"bundle", "ls", "--origin", kOrigin, "--profile",
             (root_ / "source").string()});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_NE(run.out.find(kCacheName), std::string::npos) << run.out;
}

TEST_F(BundleCliTest, AnOriginTheHostDoesNotHaveOpenIsRefused) {
  CtlRun run = Ctl({"bundle", "ls", "--origin", "http://127.0.0.1:9999"});
  EXPECT_EQ(run.exit_code, 4);
  EXPECT_NE(run.err.find("the browser does not have http://127.0.0.1:9999 "
                         "open; open a page of it first"),
            std::string::npos)
      << run.err;
  // Three profiles have the origin open: quiescectl must be told which.
  run = Ctl({"bundle", "ls", "--origin", kOrigin});
  EXPECT_EQ(run.exit_code, 2);
  EXPECT_NE(run.err.find("--profile"), std::string::npos) << run.err;
}

TEST_F(BundleCliTest, PackThenInjectIntoAnotherLiveProfile) {
  const std::string bundle_path = (root_ / "probe.zip").string();
  CtlRun run = Ctl({"--json", "bundle", "pack", "--origin", kOrigin,
                    "--profile", (root_ / "source").string(), "--cache",
                    kCacheName, "-o", bundle_path});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(json::parse(run.out)["entries"], kFixtureEntries);
  auto bundle = bundle::Bundle::Open(bundle_path);
  ASSERT_TRUE(bundle.ok()) << bundle.status();
  EXPECT_EQ((*bundle)->meta().number_of_entries, kFixtureEntries);

  // The target's host keeps committing through its own connection, with no
  // busy handler, while the bundle goes in: it must never see an error.
  std::atomic<bool> stop{false};
  std::atomic<int> commits{0}, errors{0};
  std::thread writer([&] {
    Conn own(Db("target"));
    while (!stop) {
      if (own.Exec("BEGIN IMMEDIATE; INSERT INTO caches DEFAULT VALUES; "
                   "DELETE FROM caches WHERE id = last_insert_rowid(); "
                   "COMMIT") == SQLITE_OK) {
        ++commits;
      } else {
        ++errors;
        own.Exec("ROLLBACK");
      }
    }
  });
  run = Ctl({"--json", "bundle", "inject", bundle_path, "--profile",
             (root_ / "target").string(), "--rename", "copy"});
  stop = true;
  writer.join();
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(errors, 0);
  EXPECT_GT(commits, 0);
  const json out = json::parse(run.out);
  EXPECT_EQ(out["entries"], kFixtureEntries);
  EXPECT_EQ(out["cache"], "copy");
  EXPECT_GT(out["generation"].get<uint64_t>(), 0u);

  // Every entry, with its headers and body bytes, as the source has it.
  auto source = bundle::ReadCache(conns_["source"]->get(),
                                  bundle::kDefaultNamespace, kCacheName);
  auto copy = bundle::ReadCache(conns_["target"]->get(),
                                bundle::kDefaultNamespace, "copy");
  ASSERT_TRUE(source.ok()) << source.status();
  ASSERT_TRUE(copy.ok()) << copy.status();
  ASSERT_EQ(copy->entries.size(), source->entries.size());
  for (size_t i = 0; i < source->entries.size(); ++i) {
    const bundle::CacheEntry& s = source->entries[i];
    const bundle::CacheEntry& c = copy->entries[i];
    EXPECT_EQ(c.RequestUrl(), s.RequestUrl());
    EXPECT_EQ(c.response_headers, s.response_headers) << s.RequestUrl();
    const auto s_body = bundle::MorguePathOfBodyId(s.Text("response_body_id"));
    const auto c_body = bundle::MorguePathOfBodyId(c.Text("response_body_id"));
    ASSERT_TRUE(s_body && c_body) << s.RequestUrl();
    EXPECT_NE(*c_body, *s_body) << "an injected body gets a new id";
    EXPECT_EQ(ReadFile(OriginCacheDir(root_ / "target") / *c_body),
              ReadFile(OriginCacheDir(root_ / "source") / *s_body))
        << s.RequestUrl();
  }
  EXPECT_EQ(conns_["target"]->Text("PRAGMA integrity_check"), "ok");
}

TEST_F(BundleCliTest, RefusedInjectionsLeaveNoBodyBehind) {
  const std::string bundle_path = (root_ / "probe.zip").string();
  ASSERT_EQ(Ctl({"bundle", "pack", "--origin", kOrigin, "--profile",
                 (root_ / "source").string(), "--cache", kCacheName, "-o",
                 bundle_path})
                .exit_code,
            0);
  // The name exists in the target: refused at planning, nothing staged.
  const auto target_bodies = MorgueFiles(OriginCacheDir(root_ / "target"));
  CtlRun run = Ctl({"bundle", "inject", bundle_path, "--profile",
                    (root_ / "target").string()});
  EXPECT_EQ(run.exit_code, 4) << run.err;
  EXPECT_NE(run.err.find(kCacheName), std::string::npos) << run.err;
  EXPECT_EQ(MorgueFiles(OriginCacheDir(root_ / "target")), target_bodies);

  // A database the host does not let clients write: refused by the host
  // after staging; the staged bodies are removed again.
  const auto readonly_bodies = MorgueFiles(OriginCacheDir(root_ / "readonly"));
  run = Ctl({"bundle", "inject", bundle_path, "--profile",
             (root_ / "readonly").string(), "--rename", "copy"});
  EXPECT_EQ(run.exit_code, 4) << run.err;
  EXPECT_NE(run.err.find("QUIESCE_WRITABLE"), std::string::npos) << run.err;
  EXPECT_EQ(MorgueFiles(OriginCacheDir(root_ / "readonly")), readonly_bodies);
  EXPECT_EQ(conns_["readonly"]->Int("SELECT count(*) FROM entries"),
            kFixtureEntries);

  // --overwrite replaces the cache of the same name in place.
  run = Ctl({"--json", "bundle", "inject", bundle_path, "--profile",
             (root_ / "target").string(), "--overwrite"});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(conns_["target"]->Int("SELECT count(*) FROM entries"),
            kFixtureEntries);
  EXPECT_EQ(json::parse(run.out)["orphaned_bodies"],
            static_cast<int>(target_bodies.size()));
  // The replaced bodies stay while a page may still read them, listed for
  // the shim's next open of the origin (docs/gecko.md, "Injected bodies
  // and the quota usage").
  for (const fs::path& body : target_bodies) {
    EXPECT_TRUE(fs::exists(body)) << body;
  }
  int replaced_lines = 0;
  for (const auto& dir :
       fs::directory_iterator(root_ / "target" / "quiesce-staging")) {
    std::ifstream in(dir.path() / "manifest");
    for (std::string line; std::getline(in, line);) {
      replaced_lines += line.rfind("replaced {", 0) == 0;
    }
  }
  EXPECT_EQ(replaced_lines, static_cast<int>(target_bodies.size()));
}

TEST_F(BundleCliTest, ABodyThatStaysMissingFailsThePackClearly) {
  // A body file gone while its row stays: every fresh snapshot still
  // references it, so pack gives up after its retries and writes nothing.
  const fs::path cache_dir = OriginCacheDir(root_ / "source");
  const auto bodies = MorgueFiles(cache_dir);
  ASSERT_FALSE(bodies.empty());
  fs::remove(*bodies.begin());
  const fs::path out = root_ / "never.zip";
  CtlRun run = Ctl({"bundle", "pack", "--origin", kOrigin, "--profile",
                    (root_ / "source").string(), "--cache", kCacheName, "-o",
                    out.string()});
  EXPECT_EQ(run.exit_code, 5) << run.err;
  EXPECT_NE(run.err.find(bodies.begin()->filename().string()),
            std::string::npos)
      << run.err;
  EXPECT_NE(run.err.find("3 snapshots"), std::string::npos) << run.err;
  EXPECT_FALSE(fs::exists(out));
  for (const auto& e : fs::directory_iterator(root_)) {
    EXPECT_EQ(e.path().string().find("never.zip"), std::string::npos)
        << "left behind: " << e.path();
  }
}

TEST_F(BundleCliTest, AnUnknownCacheNameIsRefusedWithTheKnownOnes) {
  CtlRun run = Ctl({"bundle", "pack", "--origin", kOrigin, "--profile",
                    (root_ / "source").string(), "--cache", "nope", "-o",
                    (root_ / "nope.zip").string()});
  EXPECT_EQ(run.exit_code, 4);
  EXPECT_NE(run.err.find("no cache \"nope\""), std::string::npos) << run.err;
  EXPECT_NE(run.err.find(kCacheName), std::string::npos) << run.err;
}

}  // namespace
}  // namespace quiesce::testing
