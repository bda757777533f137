// `quiescectl bundle pack` against the Gecko-like host while it puts and
// deletes as fast as it can (issue #14: packs of a busy page failed every
// time with "the body file ... was gone after each of 3 snapshots"). Every
// pack must succeed, and each bundle must be exactly the cache as of one
// prefix of the host's own operation log: every URL the host had at that
// point, with the body the host wrote for it, and nothing else.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
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

constexpr char kCacheName[] = "hostsim-v1";

std::string WaitForCacheDatabase(const std::string& quiescectl,
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

// URL -> body id of a bundle's entries.
std::map<std::string, std::string> BundleEntries(const bundle::Bundle& b) {
  std::map<std::string, std::string> out;
  for (const bundle::BundleEntry& e : b.entries()) {
    out[e.entry.RequestUrl()] = e.entry.Text("response_body_id");
  }
  return out;
}

// The number of leading operations after which the cache held exactly
// `entries` (URL -> body id); -1 when no prefix matches.
int64_t MatchingPrefix(const std::vector<json>& ops,
                       const std::map<std::string, std::string>& entries) {
  std::map<std::string, std::string> state;
  for (size_t k = 0;; ++k) {
    if (state == entries) return static_cast<int64_t>(k);
    if (k == ops.size()) return -1;
    const json& op = ops[k];
    if (op.value("op", "") == "put") {
      state[op.value("url", "")] = op.value("body_id", "");
    } else {
      state.erase(op.value("url", ""));
    }
  }
}

TEST(GeckoHostBusyPack, EveryPackSucceedsAndIsExact) {
  const std::string hostsim = ProgramFromEnv("HOSTSIM");
  const std::string quiescectl = ProgramFromEnv("QUIESCECTL");
  ASSERT_FALSE(hostsim.empty() || quiescectl.empty())
      << "HOSTSIM and QUIESCECTL must be set";
  TempDir dir;
  const std::string socket = dir.File("host.sock");
  const std::string log = dir.File("ops.jsonl");
  // Back to back, over 60 URLs (so puts replace entries and delete their
  // bodies), and a delete every third operation: bodies come and go all
  // the time.
  Background host({hostsim, "--gecko", "--dir", dir.File("profile"),
                   "--socket", socket, "--writable", "--seconds", "6",
                   "--rate", "0", "--urls", "60", "--delete-every", "3",
                   "--body-size", "2000", "--log", log},
                  dir.File("host.out"));
  ASSERT_TRUE(host.started());
  const std::string db_path = WaitForCacheDatabase(quiescectl, socket);
  ASSERT_FALSE(db_path.empty()) << "the host never listed its database";

  constexpr int kPacks = 4;
  std::vector<std::string> bundles;
  for (int i = 0; i < kPacks; ++i) {
    const std::string out = dir.File("pack" + std::to_string(i) + ".zip");
    const Finished pack = RunProgram(
        {quiescectl, "--socket", socket, "--json", "bundle", "pack",
         "--origin", "http://127.0.0.1:8000", "--cache", kCacheName, "-o",
         out},
        30s);
    ASSERT_EQ(pack.exit_code, 0) << "pack " << i << ": " << pack.out;
    const json report = json::parse(pack.out, nullptr, false);
    ASSERT_FALSE(report.is_discarded()) << pack.out;
    std::printf("pack %d: %s\n", i, report["point"].dump().c_str());
    bundles.push_back(out);
  }
  const int host_exit = host.Wait(60s);
  std::string host_out;
  {
    std::ifstream in(dir.File("host.out"));
    host_out.assign(std::istreambuf_iterator<char>(in), {});
  }
  ASSERT_EQ(host_exit, 0) << "host errors under packs:\n" << host_out;
  std::printf("%s", host_out.c_str());

  const std::vector<json> ops = OpsOf(ReadOpLog(log), db_path);
  ASSERT_GT(ops.size(), 100u) << "the host hardly wrote";
  std::map<std::string, std::string> body_sha;  // body id -> sha256
  size_t deletes = 0;
  for (const json& op : ops) {
    if (op.value("op", "") == "put") {
      body_sha[op.value("body_id", "")] = op.value("body_sha256", "");
    } else {
      ++deletes;
    }
  }
  ASSERT_GT(deletes, 10u);
  int64_t previous = 0;
  for (const std::string& path : bundles) {
    SCOPED_TRACE(path);
    auto opened = bundle::Bundle::Open(path);
    ASSERT_TRUE(opened.ok()) << opened.status();
    const bundle::Bundle& b = **opened;
    const int64_t prefix = MatchingPrefix(ops, BundleEntries(b));
    ASSERT_GE(prefix, 0) << "the bundle is no state the host's log went "
                            "through";
    EXPECT_GE(prefix, previous);
    previous = prefix;
    for (const bundle::BundleEntry& e : b.entries()) {
      ASSERT_TRUE(e.response_body.has_value());
      auto body = b.ReadPart(e.response_body->part);
      ASSERT_TRUE(body.ok()) << body.status();
      EXPECT_EQ(bundle::Sha256Hex(*body),
                body_sha[e.entry.Text("response_body_id")])
          << e.entry.RequestUrl();
    }
  }
  // The pins are gone with the packs.
  const fs::path staging = dir.File("profile") + "/quiesce-staging";
  size_t left = 0;
  std::error_code ec;
  for (fs::recursive_directory_iterator it(staging, ec), end;
       !ec && it != end; it.increment(ec)) {
    ++left;
  }
  EXPECT_EQ(left, 0u) << "pins left in " << staging;
}

}  // namespace
}  // namespace quiesce::testing
