// kill -9 of the Gecko-like host at three points of `bundle inject` (issue
// #14: a crash after the bodies were staged into morgue/ and before the
// rows committed left hundreds of unreferenced bodies there, which broke
// Gecko's next session). At each point the host is killed; then either
// `bundle recover` runs with the host down (as a user might before
// restarting the browser), or nothing does and the host simply restarts
// (the shim cleans up at its open of caches.sqlite, before Gecko's own
// orphan cleanup would run). Either way the profile must then hold all or
// none of the bundle, no staging directory, and no body of any injection
// that no row references; the next point is tried on the same profile,
// so orphans cannot pile up across crashes.
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <filesystem>
#include <fstream>
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

std::string WaitForCacheDb(const std::string& ctl, const std::string& socket) {
  for (int i = 0; i < 200; ++i) {
    const Finished list =
        RunProgram({ctl, "--socket", socket, "--json", "list"}, 5s);
    if (list.exit_code == 0) {
      const json parsed = json::parse(list.out, nullptr, false);
      if (!parsed.is_discarded()) {
        for (const json& db : parsed.value("databases", json::array())) {
          const std::string path = db.value("path", "");
          if (path.ends_with("/cache/caches.sqlite")) return path;
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

// Body ids listed by the staging manifests under the profile: the lines
// after the header and the cache directory (vfs/inject_staging.h).
std::set<std::string> ManifestBodyIds(const fs::path& profile) {
  std::set<std::string> ids;
  std::error_code ec;
  for (fs::directory_iterator it(profile / "quiesce-staging", ec), end;
       !ec && it != end; it.increment(ec)) {
    std::ifstream in(it->path() / "manifest");
    std::string line;
    for (int n = 1; std::getline(in, line); ++n) {
      if (n > 2) ids.insert(line);
    }
  }
  return ids;
}

struct DiskState {
  int64_t copy_entries = -1;  // entries of the injected cache; -1: none
  std::set<std::string> referenced;  // body ids rows reference
};

DiskState ReadDisk(const std::string& db_path, const std::string& cache) {
  DiskState s;
  sqlite3* db = nullptr;
  // Read-only: the host may be running (a WAL reader beside it).
  EXPECT_EQ(sqlite3_open_v2(db_path.c_str(), &db, SQLITE_OPEN_READONLY,
                            nullptr),
            SQLITE_OK);
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
  if (sqlite3_step(st) == SQLITE_ROW) s.copy_entries = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  sqlite3_prepare_v2(db,
                     "SELECT response_body_id FROM entries WHERE "
                     "response_body_id IS NOT NULL",
                     -1, &st, nullptr);
  while (sqlite3_step(st) == SQLITE_ROW) {
    s.referenced.insert(
        reinterpret_cast<const char*>(sqlite3_column_text(st, 0)));
  }
  sqlite3_finalize(st);
  sqlite3_close(db);
  return s;
}

enum class CleanUp { kBundleRecover, kHostRestart };

void KillAtEachPoint(CleanUp clean_up) {
  const std::string hostsim = ProgramFromEnv("HOSTSIM");
  const std::string ctl = ProgramFromEnv("QUIESCECTL");
  ASSERT_FALSE(hostsim.empty() || ctl.empty());
  TempDir dir;
  const fs::path profile = dir.File("profile");
  const std::string socket = dir.File("host.sock");
  const std::vector<std::string> host_argv = {
      hostsim, "--gecko", "--dir", profile.string(), "--socket", socket,
      "--writable", "--seconds", "120", "--rate", "50", "--urls", "40",
      "--body-size", "3000"};
  auto host = std::make_unique<Background>(host_argv, dir.File("host.out"));
  std::string db_path = WaitForCacheDb(ctl, socket);
  ASSERT_FALSE(db_path.empty());
  // The bundle: the host's own cache, packed while it writes.
  const std::string bundle = dir.File("b.zip");
  const Finished pack = RunProgram(
      {ctl, "--socket", socket, "bundle", "pack", "--origin", kOrigin,
       "--cache", "hostsim-v1", "-o", bundle},
      30s);
  ASSERT_EQ(pack.exit_code, 0);

  const char* points[] = {"staged", "moved", "committed"};
  std::set<std::string> all_staged;
  for (const char* point : points) {
    SCOPED_TRACE(point);
    const std::string cache = std::string("copy-") + point;
    const std::string pause = dir.File(std::string("paused-") + point);
    setenv("QUIESCECTL_TEST_PAUSE", (std::string(point) + ":" + pause).c_str(),
           1);
    Background inject({ctl, "--socket", socket, "bundle", "inject", bundle,
                       "--rename", cache},
                      dir.File(std::string("inject-") + point + ".out"));
    unsetenv("QUIESCECTL_TEST_PAUSE");
    ASSERT_TRUE(WaitForFile(pause)) << "inject never reached " << point;
    host->Kill();  // kill -9 of the "browser" at this point
    inject.Kill();
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
    // The restart: with kHostRestart, its open of caches.sqlite is what
    // cleans up.
    host = std::make_unique<Background>(host_argv, dir.File("host.out"));
    ASSERT_FALSE(WaitForCacheDb(ctl, socket).empty()) << "no restart";
    const DiskState disk = ReadDisk(db_path, cache);
    const bool committed = std::string(point) == "committed";
    if (committed) {
      EXPECT_GT(disk.copy_entries, 0) << "the committed injection is gone";
    } else {
      EXPECT_EQ(disk.copy_entries, -1) << "rows of an uncommitted injection";
    }
    // No body of any injection so far lies in morgue/ unreferenced, and
    // every referenced one is there.
    for (const std::string& id : all_staged) {
      const fs::path body = fs::path(db_path).parent_path() /
                            *bundle::MorguePathOfBodyId(id);
      EXPECT_EQ(fs::exists(body), disk.referenced.count(id) > 0)
          << body << (disk.referenced.count(id) ? " missing" : " orphaned");
    }
    std::error_code ec;
    EXPECT_TRUE(fs::is_empty(profile / "quiesce-staging", ec))
        << "staging directories left";
  }
  host->Kill();
}

TEST(GeckoHostInjectCrash, KillAtEachPointThenBundleRecoverLeavesNoOrphans) {
  KillAtEachPoint(CleanUp::kBundleRecover);
}

TEST(GeckoHostInjectCrash, KillAtEachPointThenRestartLeavesNoOrphans) {
  KillAtEachPoint(CleanUp::kHostRestart);
}

}  // namespace
}  // namespace quiesce::testing
