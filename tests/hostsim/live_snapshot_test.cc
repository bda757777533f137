// quiescectl snapshot and the bundle library's PackBundle against the
// Gecko-like host while it writes: the snapshots are consistent images (a
// prefix of the host's commits), they pack into verified bundles whose
// bodies are the host's, and the host sees no error meanwhile.
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <thread>
#include <vector>

#include "cache_bundle.h"
#include "digest.h"
#include "op_log.h"
#include "subprocess.h"
#include "support.h"

namespace quiesce::testing {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

constexpr char kOrigin[] = "http://127.0.0.1:8000";  // the load's origin 0
constexpr char kCacheName[] = "hostsim-v1";

// Waits (bounded) until the host lists its caches.sqlite; its path, or "".
std::string WaitForDatabase(const std::string& quiescectl,
                            const std::string& socket) {
  for (int i = 0; i < 200; ++i) {
    const Finished list =
        RunProgram({quiescectl, "--socket", socket, "--json", "list"}, 5s);
    if (list.exit_code == 0) {
      const json parsed = json::parse(list.out, nullptr, false);
      if (!parsed.is_discarded() && parsed.contains("databases")) {
        for (const json& db : parsed["databases"]) {
          const std::string path = db.value("path", "");
          if (path.ends_with("/cache/caches.sqlite")) return path;
        }
      }
    }
    std::this_thread::sleep_for(50ms);
  }
  return "";
}

TEST(GeckoHostLive, SnapshotsArePrefixesAndPack) {
  const std::string hostsim = ProgramFromEnv("HOSTSIM");
  const std::string quiescectl = ProgramFromEnv("QUIESCECTL");
  ASSERT_FALSE(hostsim.empty() || quiescectl.empty())
      << "HOSTSIM and QUIESCECTL must be set";
  TempDir dir;
  const std::string socket = dir.File("host.sock");
  const std::string log = dir.File("ops.jsonl");
  // Every put a new URL and no deletes: a body, once referenced, stays, so
  // a pack from any snapshot finds all of its bodies.
  Background host({hostsim, "--gecko", "--dir", dir.File("profile"),
                   "--socket", socket, "--seconds", "5", "--rate", "200",
                   "--urls", "0", "--delete-every", "0", "--body-size",
                   "3000", "--log", log},
                  dir.File("host.out"));
  ASSERT_TRUE(host.started());
  const std::string db_path = WaitForDatabase(quiescectl, socket);
  ASSERT_FALSE(db_path.empty()) << "the host never listed its database";

  std::vector<std::string> snapshots;
  for (int i = 0; i < 3; ++i) {
    std::this_thread::sleep_for(500ms);
    const std::string image = dir.File("snap" + std::to_string(i) + ".sqlite");
    const Finished snap = RunProgram({quiescectl, "--socket", socket, "snapshot",
                               db_path, "-o", image, "--verify"},
                              30s);
    ASSERT_EQ(snap.exit_code, 0) << snap.out;
    snapshots.push_back(image);
  }
  const std::string bundle_path = dir.File("cache.zip");
  int64_t packed_entries = 0;
  {
    sqlite3* image = nullptr;
    ASSERT_EQ(sqlite3_open_v2(snapshots.back().c_str(), &image,
                              SQLITE_OPEN_READONLY, nullptr),
              SQLITE_OK);
    absl::StatusOr<bundle::PackResult> packed = bundle::PackBundle(
        image, fs::path(db_path).parent_path(), kOrigin, kCacheName, {},
        bundle_path);
    sqlite3_close(image);
    ASSERT_TRUE(packed.ok()) << packed.status();
    packed_entries = packed->entry_count;
    EXPECT_EQ(packed->schema_version, 31);
  }
  const int host_exit = host.Wait(60s);
  std::string host_out;
  {
    std::ifstream in(dir.File("host.out"));
    host_out.assign(std::istreambuf_iterator<char>(in), {});
  }
  ASSERT_EQ(host_exit, 0) << "host errors under snapshots:\n" << host_out;

  // Each snapshot holds exactly the first K puts of the host's log: an image
  // as of one commit, and later snapshots hold more.
  const std::vector<json> ops = OpsOf(ReadOpLog(log), db_path);
  ASSERT_FALSE(ops.empty());
  size_t previous = 0;
  for (const std::string& path : snapshots) {
    SCOPED_TRACE(path);
    sqlite3* image = nullptr;
    ASSERT_EQ(sqlite3_open_v2(path.c_str(), &image, SQLITE_OPEN_READONLY,
                              nullptr),
              SQLITE_OK);
    absl::StatusOr<bundle::CacheContents> cache =
        bundle::ReadCache(image, bundle::kDefaultNamespace, kCacheName);
    sqlite3_close(image);
    ASSERT_TRUE(cache.ok()) << cache.status();
    ASSERT_LE(cache->entries.size(), ops.size());
    EXPECT_GE(cache->entries.size(), previous);
    previous = cache->entries.size();
    for (size_t i = 0; i < cache->entries.size(); ++i) {
      EXPECT_EQ(cache->entries[i].RequestUrl(), ops[i].at("url"));
      EXPECT_EQ(cache->entries[i].Text("response_body_id"),
                ops[i].at("body_id"));
    }
  }
  EXPECT_GT(previous, 0u);
  EXPECT_EQ(packed_entries, static_cast<int64_t>(previous));

  // The bundle verifies, and its bodies are the bytes the host wrote.
  absl::StatusOr<std::unique_ptr<bundle::Bundle>> opened =
      bundle::Bundle::Open(bundle_path);
  ASSERT_TRUE(opened.ok()) << opened.status();
  const bundle::Bundle& b = **opened;
  EXPECT_EQ(b.meta().origin, kOrigin);
  EXPECT_EQ(b.meta().name, kCacheName);
  ASSERT_EQ(b.entries().size(), previous);
  for (size_t i = 0; i < b.entries().size(); ++i) {
    const bundle::BundleEntry& entry = b.entries()[i];
    ASSERT_TRUE(entry.response_body.has_value());
    absl::StatusOr<std::string> body = b.ReadPart(entry.response_body->part);
    ASSERT_TRUE(body.ok()) << body.status();
    EXPECT_EQ(bundle::Sha256Hex(*body), ops[i].at("body_sha256"));
  }
}

}  // namespace
}  // namespace quiesce::testing
