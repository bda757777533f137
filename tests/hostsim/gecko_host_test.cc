// hostsim --gecko, checked after a short run with the bundle library: every
// put it logged is a Cache API entry that Gecko's reader code finds, with
// the right hashes, headers and URL list, and its body at the right morgue
// path; deletes and replacements leave nothing behind; the database is
// Gecko's schema with Gecko's settings and passes integrity_check.
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>
#include <string>
#include <vector>

#include "cache_bundle.h"
#include "digest.h"
#include "gecko_names.h"
#include "op_log.h"
#include "subprocess.h"
#include "support.h"

namespace quiesce::testing {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

constexpr char kCacheName[] = "hostsim-v1";

std::string ReadBytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

int64_t QueryInt(sqlite3* db, const std::string& sql) {
  sqlite3_stmt* st = nullptr;
  int64_t value = -1;
  if (sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr) == SQLITE_OK &&
      sqlite3_step(st) == SQLITE_ROW) {
    value = sqlite3_column_int64(st, 0);
  }
  sqlite3_finalize(st);
  return value;
}

std::string QueryText(sqlite3* db, const std::string& sql) {
  sqlite3_stmt* st = nullptr;
  std::string value = "(no row)";
  if (sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr) == SQLITE_OK &&
      sqlite3_step(st) == SQLITE_ROW) {
    const unsigned char* text = sqlite3_column_text(st, 0);
    value = text ? reinterpret_cast<const char*>(text) : "";
  }
  sqlite3_finalize(st);
  return value;
}

bool HasHeader(const std::vector<bundle::Header>& headers,
               const std::string& name) {
  for (const bundle::Header& h : headers) {
    if (h.name == name) return true;
  }
  return false;
}

// Files under morgue/ by their path relative to the cache directory.
std::set<std::string> MorgueFiles(const fs::path& cache_dir) {
  std::set<std::string> files;
  for (const auto& f : fs::recursive_directory_iterator(cache_dir / "morgue")) {
    if (f.is_regular_file()) {
      files.insert(fs::relative(f.path(), cache_dir).string());
    }
  }
  return files;
}

void CheckOrigin(const std::string& db_path, const std::vector<json>& ops) {
  SCOPED_TRACE(db_path);
  const fs::path cache_dir = fs::path(db_path).parent_path();
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open_v2(db_path.c_str(), &db, SQLITE_OPEN_READONLY,
                            nullptr),
            SQLITE_OK);
  EXPECT_EQ(QueryText(db, "PRAGMA integrity_check"), "ok");
  EXPECT_EQ(QueryText(db, "PRAGMA foreign_key_check"), "(no row)");
  EXPECT_EQ(QueryInt(db, "PRAGMA page_size"), 4096);
  EXPECT_EQ(QueryInt(db, "PRAGMA auto_vacuum"), 2);  // INCREMENTAL
  EXPECT_EQ(QueryText(db, "PRAGMA journal_mode"), "wal");

  absl::StatusOr<bundle::SchemaInfo> schema = bundle::ReadSchema(db);
  ASSERT_TRUE(schema.ok()) << schema.status();
  EXPECT_EQ(schema->user_version, 31);
  EXPECT_TRUE(schema->HasColumn("entries", "response_credentials"));
  EXPECT_EQ(schema->triggers.size(), 3u);

  absl::StatusOr<bundle::CacheContents> cache =
      bundle::ReadCache(db, bundle::kDefaultNamespace, kCacheName);
  ASSERT_TRUE(cache.ok()) << cache.status();
  const std::map<std::string, json> expected = FinalEntries(ops);
  EXPECT_EQ(cache->entries.size(), expected.size());

  std::set<std::string> referenced;
  int64_t body_bytes = 0;
  for (const bundle::CacheEntry& entry : cache->entries) {
    const std::string url = entry.RequestUrl();
    SCOPED_TRACE(url);
    auto put = expected.find(url);
    ASSERT_NE(put, expected.end()) << "an entry the log does not account for";
    const std::string body_id = put->second.at("body_id");
    EXPECT_EQ(entry.Text("response_body_id"), body_id);
    EXPECT_EQ(entry.Text("request_method"), "GET");
    EXPECT_EQ(entry.Integer("response_status"), 200);
    // What match() looks entries up by.
    const std::string no_query = entry.Text("request_url_no_query");
    const std::string query = entry.Text("request_url_query");
    EXPECT_EQ(entry.columns.at("request_url_no_query_hash").bytes,
              bundle::GeckoHash(no_query));
    EXPECT_EQ(entry.columns.at("request_url_query_hash").bytes,
              bundle::GeckoHash(query));
    EXPECT_EQ(query.empty(), url.find('?') == std::string::npos);
    EXPECT_TRUE(HasHeader(entry.request_headers, "X-Requested-With"));
    EXPECT_TRUE(HasHeader(entry.response_headers, "Content-Type"));
    EXPECT_EQ(entry.response_url_list, std::vector<std::string>{url});

    const std::optional<std::string> morgue =
        bundle::MorguePathOfBodyId(body_id);
    ASSERT_TRUE(morgue.has_value());
    EXPECT_EQ(*morgue, put->second.at("body_path").get<std::string>());
    const std::string body = ReadBytes(cache_dir / *morgue);
    EXPECT_EQ(static_cast<int64_t>(body.size()),
              entry.Integer("response_body_disk_size"));
    EXPECT_EQ(bundle::Sha256Hex(body),
              put->second.at("body_sha256").get<std::string>());
    EXPECT_EQ(body.substr(0, 10), std::string("\xff\x06\x00\x00sNaPpY", 10));
    referenced.insert(*morgue);
    body_bytes += static_cast<int64_t>(body.size());
  }
  // Replaced and deleted bodies are gone, no .tmp is left, and the quota
  // triggers counted exactly the live bodies.
  EXPECT_EQ(MorgueFiles(cache_dir), referenced);
  EXPECT_EQ(QueryInt(db, "SELECT total_disk_usage FROM usage_info WHERE id = 1"),
            body_bytes);
  EXPECT_FALSE(fs::exists(cache_dir / "context_open.marker"));
  EXPECT_TRUE(fs::exists(cache_dir / ".padding"));

  // https responses share one security_info row, counted once per entry.
  const bool https = db_path.find("/https+++") != std::string::npos;
  if (https && !cache->entries.empty()) {
    ASSERT_EQ(cache->security_info.size(), 1u);
    const bundle::SecurityInfo& info = cache->security_info.begin()->second;
    EXPECT_EQ(info.refcount, static_cast<int64_t>(cache->entries.size()));
    EXPECT_EQ(info.hash, bundle::GeckoHash(info.data));
  } else {
    EXPECT_TRUE(cache->security_info.empty());
  }
  EXPECT_EQ(QueryInt(db, "SELECT count(*) FROM security_info"),
            https && !cache->entries.empty() ? 1 : 0);
  sqlite3_close(db);
}

TEST(GeckoHost, EveryLoggedPutIsACacheEntryWithItsBody) {
  const std::string hostsim = ProgramFromEnv("HOSTSIM");
  ASSERT_FALSE(hostsim.empty()) << "HOSTSIM is not set";
  TempDir dir;
  const std::string log = dir.File("ops.jsonl");
  // Few URLs, so that puts replace entries; bodies over 64 KiB, so that they
  // take two Snappy chunks; two origins, one of them https.
  const Finished run = RunProgram({hostsim, "--gecko", "--dir", dir.path().string(),
                            "--origins", "2", "--rate", "0", "--seconds", "1",
                            "--urls", "12", "--delete-every", "4",
                            "--body-size", "70000", "--log", log},
                           60s);
  ASSERT_EQ(run.exit_code, 0) << run.out;

  const std::vector<json> ops = ReadOpLog(log);
  ASSERT_FALSE(ops.empty());
  std::set<std::string> dbs;
  int64_t deletes = 0, replacing_puts = 0;
  for (const json& op : ops) {
    dbs.insert(op.at("db").get<std::string>());
    if (op.at("op") == "delete") ++deletes;
    if (op.at("op") == "put" && op.at("removed").get<int64_t>() > 0) {
      ++replacing_puts;
    }
  }
  ASSERT_EQ(dbs.size(), 2u);
  // The run exercised what it claims to check.
  EXPECT_GT(deletes, 0);
  EXPECT_GT(replacing_puts, 0);
  for (const std::string& db : dbs) {
    EXPECT_NE(run.out.find("hostsim: open " + db), std::string::npos);
    CheckOrigin(db, OpsOf(ops, db));
  }
}

TEST(GeckoHost, ReopensItsOwnStorage) {
  const std::string hostsim = ProgramFromEnv("HOSTSIM");
  ASSERT_FALSE(hostsim.empty()) << "HOSTSIM is not set";
  TempDir dir;
  auto run = [&](const std::string& log) {
    return RunProgram({hostsim, "--gecko", "--dir", dir.path().string(), "--rate",
                "0", "--seconds", "1", "--urls", "8", "--delete-every", "3",
                "--log", log},
               60s);
  };
  const Finished first = run(dir.File("first.jsonl"));
  ASSERT_EQ(first.exit_code, 0) << first.out;
  const Finished second = run(dir.File("second.jsonl"));
  ASSERT_EQ(second.exit_code, 0) << second.out;
  // The second run opened the schema and the cache the first one made and
  // carried on from the entries it left: the two logs in order account for
  // the cache exactly.
  std::vector<json> ops = ReadOpLog(dir.File("first.jsonl"));
  const std::vector<json> more = ReadOpLog(dir.File("second.jsonl"));
  ASSERT_FALSE(ops.empty());
  ASSERT_FALSE(more.empty());
  ops.insert(ops.end(), more.begin(), more.end());
  const std::string db_path = ops.front().at("db");
  CheckOrigin(db_path, ops);
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open_v2(db_path.c_str(), &db, SQLITE_OPEN_READONLY,
                            nullptr),
            SQLITE_OK);
  absl::StatusOr<std::vector<bundle::CacheSummary>> caches =
      bundle::ListCaches(db);
  sqlite3_close(db);
  ASSERT_TRUE(caches.ok()) << caches.status();
  ASSERT_EQ(caches->size(), 1u);
  EXPECT_EQ((*caches)[0].name, kCacheName);
}

}  // namespace
}  // namespace quiesce::testing
