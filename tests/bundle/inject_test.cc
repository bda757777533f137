// Injection plans run with plain SQLite in one transaction on copies of a
// real Firefox database, then read back through the reader.
#include <gtest/gtest.h>

#include <map>
#include <set>

#include "bundle_fixture.h"
#include "digest.h"
#include "gecko_names.h"

namespace quiesce::testing {
namespace {

namespace fs = std::filesystem;
using bundle::Bundle;
using bundle::BundleEntry;
using bundle::InjectionPlan;
using bundle::InjectOptions;

const std::string kSecurityA(3000, 'A');
const std::string kSecurityB = "security info B";

// Gives `count` entries (after skipping `skip`, in id order) the security
// info `data`, kept as Gecko keeps it: one row, refcount = uses.
void AddSecurityInfo(Conn& db, const std::string& data, int skip, int count) {
  sqlite3_stmt* st = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(db.get(),
                               "INSERT INTO security_info (hash, data, "
                               "refcount) VALUES (?1, ?2, ?3)",
                               -1, &st, nullptr),
            SQLITE_OK);
  std::string hash = bundle::GeckoHash(data);
  sqlite3_bind_blob(st, 1, hash.data(), static_cast<int>(hash.size()),
                    SQLITE_TRANSIENT);
  sqlite3_bind_blob(st, 2, data.data(), static_cast<int>(data.size()),
                    SQLITE_TRANSIENT);
  sqlite3_bind_int(st, 3, count);
  ASSERT_EQ(sqlite3_step(st), SQLITE_DONE);
  sqlite3_finalize(st);
  db.Must("UPDATE entries SET response_security_info_id = " +
          std::to_string(sqlite3_last_insert_rowid(db.get())) +
          " WHERE id IN (SELECT id FROM entries ORDER BY id LIMIT " +
          std::to_string(count) + " OFFSET " + std::to_string(skip) + ")");
}

// Schema 28: before the body disk sizes, usage_info and its triggers (and
// before response_credentials).
void DowngradeToSchema28(Conn& db) {
  db.Must(
      "DROP TRIGGER entries_insert_trigger;"
      "DROP TRIGGER entries_update_trigger;"
      "DROP TRIGGER entries_delete_trigger;"
      "DROP TABLE usage_info;"
      "ALTER TABLE entries DROP COLUMN request_body_disk_size;"
      "ALTER TABLE entries DROP COLUMN response_body_disk_size;"
      "ALTER TABLE entries DROP COLUMN response_credentials;"
      "PRAGMA user_version = 28");
}

int64_t Usage(Conn& db) {
  return db.Int("SELECT total_disk_usage FROM usage_info WHERE id = 1");
}

// Runs the plan with plain SQLite under an authorizer that lets through
// only plain DML: the transaction statements it counts are ExecutePlan's
// own BEGIN and COMMIT, none from the plan.
absl::Status RunPlanAsPlainDml(Conn& db, const InjectionPlan& plan) {
  struct Seen {
    int transactions = 0;
    std::set<int> refused;
  } seen;
  sqlite3_set_authorizer(
      db.get(),
      [](void* arg, int action, const char*, const char*, const char*,
         const char*) {
        Seen* s = static_cast<Seen*>(arg);
        switch (action) {
          case SQLITE_INSERT:
          case SQLITE_UPDATE:
          case SQLITE_DELETE:
          case SQLITE_READ:
          case SQLITE_SELECT:
          case SQLITE_FUNCTION:
            return SQLITE_OK;
          case SQLITE_TRANSACTION:
            s->transactions++;
            return SQLITE_OK;
          default:
            s->refused.insert(action);
            return SQLITE_DENY;
        }
      },
      &seen);
  absl::Status status = bundle::ExecutePlan(db.get(), plan);
  sqlite3_set_authorizer(db.get(), nullptr, nullptr);
  EXPECT_TRUE(seen.refused.empty()) << "the plan needs more than plain DML";
  if (status.ok()) {
    EXPECT_EQ(seen.transactions, 2);
  }
  return status;
}

void ExpectConsistent(Conn& db) {
  EXPECT_EQ(db.Text("PRAGMA integrity_check"), "ok");
  EXPECT_EQ(db.Int("SELECT count(*) FROM pragma_foreign_key_check"), 0);
  // security_info refcounts are the number of entries using each row.
  EXPECT_EQ(db.Int("SELECT count(*) FROM security_info s WHERE refcount != "
                   "(SELECT count(*) FROM entries "
                   "WHERE response_security_info_id = s.id)"),
            0);
  EXPECT_EQ(db.Int("SELECT count(*) FROM security_info GROUP BY hash, data "
                   "ORDER BY count(*) DESC LIMIT 1"),
            1)
      << "security info not deduplicated";
  for (const char* table :
       {"request_headers", "response_headers", "response_url_list"}) {
    EXPECT_EQ(db.Int(std::string("SELECT count(*) FROM ") + table +
                     " WHERE entry_id NOT IN (SELECT id FROM entries)"),
              0)
        << table;
  }
}

class InjectTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::optional<fs::path> fixture = FixtureCacheDir("clean");
    if (!fixture) GTEST_SKIP() << "Firefox fixtures not found";
    source_dir_ = CopyFixture(*fixture, tmp_.path(), "source");
    target_dir_ = CopyFixture(*fixture, tmp_.path(), "target");
    source_ = std::make_unique<Conn>(
        (source_dir_ / "caches.sqlite").string(), "unix");
    target_ = std::make_unique<Conn>(
        (target_dir_ / "caches.sqlite").string(), "unix");
    target_->Must("PRAGMA foreign_keys = ON");
    // The fixture is plain http: give it the security info an https
    // origin would have, A shared with the target, B only in the bundle.
    AddSecurityInfo(*source_, kSecurityA, 0, 5);
    AddSecurityInfo(*source_, kSecurityB, 5, 3);
    AddSecurityInfo(*target_, kSecurityA, 10, 2);
  }

  std::unique_ptr<Bundle> Pack(Conn& db, const fs::path& cache_dir,
                               const std::string& name) {
    fs::path out = tmp_.path() / name;
    absl::StatusOr<bundle::PackResult> packed = bundle::PackBundle(
        db.get(), cache_dir, kOrigin, kCacheName, {}, out);
    EXPECT_TRUE(packed.ok()) << packed.status();
    absl::StatusOr<std::unique_ptr<Bundle>> opened = Bundle::Open(out);
    EXPECT_TRUE(opened.ok()) << opened.status();
    return opened.ok() ? *std::move(opened) : nullptr;
  }

  absl::StatusOr<InjectionPlan> Plan(const Bundle& b, Conn& db,
                                     const InjectOptions& options) {
    absl::StatusOr<bundle::LiveDatabase> live =
        bundle::ReadLiveDatabase(db.get());
    if (!live.ok()) return live.status();
    return bundle::PlanInjection(b, *live, options);
  }

  // Everything of `b` is in cache `name` of `db`, bodies staged in
  // `cache_dir` under new ids.
  void ExpectInjected(Conn& db, const fs::path& cache_dir, const Bundle& b,
                      const std::string& name) {
    absl::StatusOr<bundle::CacheContents> cache =
        bundle::ReadCache(db.get(), 0, name);
    ASSERT_TRUE(cache.ok()) << cache.status();
    ASSERT_EQ(cache->entries.size(), b.entries().size());
    std::map<std::string, const bundle::CacheEntry*> by_url;
    for (const bundle::CacheEntry& e : cache->entries) {
      by_url[e.RequestUrl()] = &e;
    }
    for (const BundleEntry& want : b.entries()) {
      std::string url = want.entry.RequestUrl();
      ASSERT_EQ(by_url.count(url), 1u) << url;
      const bundle::CacheEntry& got = *by_url[url];
      EXPECT_EQ(got.response_headers, want.entry.response_headers) << url;
      EXPECT_EQ(got.request_headers, want.entry.request_headers) << url;
      EXPECT_EQ(got.response_url_list, want.entry.response_url_list) << url;
      EXPECT_EQ(got.Integer("response_status"), 200);
      EXPECT_EQ(got.Text("request_referrer"),
                want.entry.Text("request_referrer"));
      // The URL hashes: recomputed from the URL, and what Firefox itself
      // stored for the same URL.
      const bundle::SqlValue& hash =
          got.columns.at("request_url_no_query_hash");
      EXPECT_EQ(hash.type, bundle::SqlValue::Type::kBlob);
      EXPECT_EQ(hash.bytes,
                bundle::GeckoHash(got.Text("request_url_no_query")));
      EXPECT_EQ(hash, want.entry.columns.at("request_url_no_query_hash"));
      EXPECT_EQ(got.columns.at("request_url_query_hash"),
                want.entry.columns.at("request_url_query_hash"));
      // A new body id, its file staged with the bundle's bytes.
      std::string body_id = got.Text("response_body_id");
      EXPECT_NE(body_id, want.entry.Text("response_body_id"));
      std::optional<std::string> morgue = bundle::MorguePathOfBodyId(body_id);
      ASSERT_TRUE(morgue.has_value()) << body_id;
      EXPECT_EQ(ReadFile(cache_dir / *morgue),
                *b.ReadPart(want.response_body->part));
      if (got.columns.count("response_body_disk_size")) {
        EXPECT_EQ(got.Integer("response_body_disk_size"),
                  want.response_body->size);
      }
      std::optional<int64_t> want_security =
          want.entry.Integer("response_security_info_id");
      std::optional<int64_t> got_security =
          got.Integer("response_security_info_id");
      ASSERT_EQ(want_security.has_value(), got_security.has_value()) << url;
      if (got_security) {
        EXPECT_EQ(cache->security_info.at(*got_security).data,
                  b.security_info().at(*want_security).data);
      }
    }
  }

  int64_t SecurityRefcount(Conn& db, const std::string& data) {
    sqlite3_stmt* st = nullptr;
    sqlite3_prepare_v2(db.get(),
                       "SELECT refcount FROM security_info WHERE data = ?1",
                       -1, &st, nullptr);
    sqlite3_bind_blob(st, 1, data.data(), static_cast<int>(data.size()),
                      SQLITE_TRANSIENT);
    int64_t refcount = sqlite3_step(st) == SQLITE_ROW
                           ? sqlite3_column_int64(st, 0)
                           : -1;
    sqlite3_finalize(st);
    return refcount;
  }

  TempDir tmp_;
  fs::path source_dir_, target_dir_;
  std::unique_ptr<Conn> source_, target_;
};

TEST_F(InjectTest, RenamedCacheArrivesWhole) {
  std::unique_ptr<Bundle> b = Pack(*source_, source_dir_, "probe.zip");
  ASSERT_NE(b, nullptr);
  int64_t usage_before = Usage(*target_);
  InjectOptions options;
  options.rename = "probe-v1-copy";
  absl::StatusOr<InjectionPlan> plan = Plan(*b, *target_, options);
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(plan->bodies.size(), static_cast<size_t>(kFixtureEntries));
  EXPECT_TRUE(plan->orphaned_bodies.empty());
  EXPECT_TRUE(plan->dropped_columns.empty());

  ASSERT_TRUE(bundle::StageBodies(*b, *plan, target_dir_).ok());
  for (const bundle::StagedBody& body : plan->bodies) {
    fs::path staged = target_dir_ / body.morgue_path;
    EXPECT_EQ(ReadFile(staged), *b->ReadPart(body.part));
    EXPECT_FALSE(fs::exists(fs::path(staged).replace_extension(".tmp")));
  }
  absl::Status ran = RunPlanAsPlainDml(*target_, *plan);
  ASSERT_TRUE(ran.ok()) << ran;

  ExpectInjected(*target_, target_dir_, *b, "probe-v1-copy");
  ExpectConsistent(*target_);
  // A was already there: one row, its uses added; B is new.
  EXPECT_EQ(SecurityRefcount(*target_, kSecurityA), 2 + 5);
  EXPECT_EQ(SecurityRefcount(*target_, kSecurityB), 3);
  int64_t bundle_bytes = 0;
  for (const bundle::StagedBody& body : plan->bodies) bundle_bytes += body.size;
  EXPECT_EQ(Usage(*target_), usage_before + bundle_bytes);
  absl::StatusOr<std::vector<bundle::CacheSummary>> caches =
      bundle::ListCaches(target_->get());
  ASSERT_TRUE(caches.ok());
  ASSERT_EQ(caches->size(), 2u);
  for (const bundle::CacheSummary& cache : *caches) {
    EXPECT_EQ(cache.entry_count, kFixtureEntries) << cache.name;
  }
  // The original cache is untouched.
  ExpectInjected(*target_, target_dir_, *b, "probe-v1-copy");
}

// Each step in a transaction of its own, as bundle inject runs them live:
// the cache is invisible and the database consistent after every step
// before the last, and whole after the last.
TEST_F(InjectTest, ANewCacheIsFilledUnseenThenPublishedWhole) {
  std::unique_ptr<Bundle> b = Pack(*source_, source_dir_, "probe.zip");
  ASSERT_NE(b, nullptr);
  const int64_t usage_before = Usage(*target_);
  InjectOptions options;
  options.rename = "probe-v2";
  options.rows_per_step = 1;  // an entry a step
  absl::StatusOr<InjectionPlan> plan = Plan(*b, *target_, options);
  ASSERT_TRUE(plan.ok()) << plan.status();
  ASSERT_TRUE(plan->fills_new_cache);
  ASSERT_EQ(plan->steps.size(), static_cast<size_t>(kFixtureEntries) + 2);
  ASSERT_TRUE(bundle::StageBodies(*b, *plan, target_dir_).ok());
  std::string cache_id;
  for (size_t i = 0; i < plan->steps.size(); ++i) {
    target_->Must("BEGIN IMMEDIATE");
    absl::Status s = bundle::ExecuteStep(target_->get(), plan->steps[i],
                                         cache_id);
    ASSERT_TRUE(s.ok()) << "step " << i << ": " << s;
    if (i == 0) cache_id = std::to_string(sqlite3_last_insert_rowid(
                    target_->get()));
    target_->Must("COMMIT");
    ExpectConsistent(*target_);
    if (i + 1 < plan->steps.size()) {
      auto caches = bundle::ListCaches(target_->get());
      ASSERT_TRUE(caches.ok());
      EXPECT_EQ(caches->size(), 1u) << "seen before the last step " << i;
      EXPECT_EQ(plan->steps[i].entries, i == 0 ? 0 : 1);
    }
  }
  ExpectInjected(*target_, target_dir_, *b, "probe-v2");
  int64_t bundle_bytes = 0;
  for (const bundle::StagedBody& body : plan->bodies) bundle_bytes += body.size;
  EXPECT_EQ(Usage(*target_), usage_before + bundle_bytes);
  EXPECT_EQ(SecurityRefcount(*target_, kSecurityA), 2 + 5);
  EXPECT_EQ(SecurityRefcount(*target_, kSecurityB), 3);
}

// What a dead injection's fill left (some steps, never published) deletes
// back to the database as it was; a published cache it leaves alone.
TEST_F(InjectTest, AnUnpublishedFillDeletesToNothing) {
  std::unique_ptr<Bundle> b = Pack(*source_, source_dir_, "probe.zip");
  ASSERT_NE(b, nullptr);
  auto counts = [&] {
    std::vector<int64_t> n;
    for (const char* table :
         {"caches", "storage", "entries", "request_headers",
          "response_headers", "response_url_list", "security_info"}) {
      n.push_back(target_->Int(std::string("SELECT count(*) FROM ") + table));
    }
    n.push_back(Usage(*target_));
    n.push_back(SecurityRefcount(*target_, kSecurityA));
    return n;
  };
  const std::vector<int64_t> before = counts();
  InjectOptions options;
  options.rename = "probe-v2";
  options.rows_per_step = 1;
  absl::StatusOr<InjectionPlan> plan = Plan(*b, *target_, options);
  ASSERT_TRUE(plan.ok()) << plan.status();
  std::string cache_id;
  for (size_t i = 0; i + 1 < plan->steps.size(); ++i) {  // all but publish
    ASSERT_TRUE(
        bundle::ExecuteStep(target_->get(), plan->steps[i], cache_id).ok());
    if (i == 0) cache_id = std::to_string(sqlite3_last_insert_rowid(
                    target_->get()));
  }
  ASSERT_NE(counts(), before);
  const int64_t published = target_->Int("SELECT cache_id FROM storage");
  target_->Must(bundle::DeleteUnpublishedCacheSql(published));
  ASSERT_NE(counts(), before) << "the published cache was touched";
  target_->Must(bundle::DeleteUnpublishedCacheSql(std::stoll(cache_id)));
  EXPECT_EQ(counts(), before);
  ExpectConsistent(*target_);
  target_->Must(bundle::DeleteUnpublishedCacheSql(std::stoll(cache_id)));
  EXPECT_EQ(counts(), before) << "a second time does nothing";
}

TEST_F(InjectTest, OverwriteReplacesTheEntriesOfTheSameCache) {
  std::unique_ptr<Bundle> b = Pack(*source_, source_dir_, "probe.zip");
  ASSERT_NE(b, nullptr);
  int64_t cache_id = target_->Int("SELECT cache_id FROM storage");
  absl::StatusOr<bundle::CacheContents> before =
      bundle::ReadCache(target_->get(), 0, kCacheName);
  ASSERT_TRUE(before.ok());
  std::set<std::string> old_bodies;
  for (const bundle::CacheEntry& e : before->entries) {
    old_bodies.insert(*bundle::MorguePathOfBodyId(e.Text("response_body_id")));
  }

  InjectOptions options;
  options.overwrite = true;
  absl::StatusOr<InjectionPlan> plan = Plan(*b, *target_, options);
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(std::set<std::string>(plan->orphaned_bodies.begin(),
                                  plan->orphaned_bodies.end()),
            old_bodies);
  ASSERT_TRUE(bundle::StageBodies(*b, *plan, target_dir_).ok());
  absl::Status ran = RunPlanAsPlainDml(*target_, *plan);
  ASSERT_TRUE(ran.ok()) << ran;

  EXPECT_EQ(target_->Int("SELECT count(*) FROM storage"), 1);
  EXPECT_EQ(target_->Int("SELECT cache_id FROM storage"), cache_id);
  EXPECT_EQ(target_->Int("SELECT count(*) FROM entries"), kFixtureEntries);
  EXPECT_EQ(target_->Int("SELECT count(*) FROM response_headers"),
            2 * kFixtureEntries);
  ExpectInjected(*target_, target_dir_, *b, kCacheName);
  ExpectConsistent(*target_);
  // The target's own uses of A went with its entries.
  EXPECT_EQ(SecurityRefcount(*target_, kSecurityA), 5);
  EXPECT_EQ(SecurityRefcount(*target_, kSecurityB), 3);
  EXPECT_EQ(Usage(*target_),
            target_->Int("SELECT sum(ifnull(request_body_disk_size, 0) + "
                         "ifnull(response_body_disk_size, 0)) FROM entries"));
  // The old bodies are orphans now: still on disk, for the caller.
  for (const std::string& path : old_bodies) {
    EXPECT_TRUE(fs::exists(target_dir_ / path)) << path;
  }
}

TEST_F(InjectTest, AnExistingNameNeedsOverwrite) {
  std::unique_ptr<Bundle> b = Pack(*source_, source_dir_, "probe.zip");
  ASSERT_NE(b, nullptr);
  absl::StatusOr<InjectionPlan> plan = Plan(*b, *target_, {});
  ASSERT_FALSE(plan.ok());
  EXPECT_TRUE(absl::IsFailedPrecondition(plan.status()));
  EXPECT_NE(plan.status().message().find("already has a cache \"probe-v1\""),
            std::string::npos)
      << plan.status();
}

TEST_F(InjectTest, ACacheMadeAfterThePlanFailsTheWholeInjection) {
  std::unique_ptr<Bundle> b = Pack(*source_, source_dir_, "probe.zip");
  ASSERT_NE(b, nullptr);
  InjectOptions options;
  options.rename = "late";
  absl::StatusOr<InjectionPlan> plan = Plan(*b, *target_, options);
  ASSERT_TRUE(plan.ok()) << plan.status();
  ASSERT_TRUE(bundle::StageBodies(*b, *plan, target_dir_).ok());
  // The page opens "late" between the snapshot and the injection.
  target_->Must(
      "INSERT INTO caches DEFAULT VALUES;"
      "INSERT INTO storage (namespace, key, cache_id) VALUES "
      "(0, x'6c00610074006500', last_insert_rowid())");
  int64_t entries = target_->Int("SELECT count(*) FROM entries");
  int64_t usage = Usage(*target_);

  absl::Status ran = bundle::ExecutePlan(target_->get(), *plan);
  ASSERT_FALSE(ran.ok());
  EXPECT_NE(ran.message().find("UNIQUE constraint failed: storage"),
            std::string::npos)
      << ran;
  EXPECT_EQ(target_->Int("SELECT count(*) FROM entries"), entries);
  EXPECT_EQ(Usage(*target_), usage);
  bundle::UnstageBodies(*plan, target_dir_);
  for (const bundle::StagedBody& body : plan->bodies) {
    EXPECT_FALSE(fs::exists(target_dir_ / body.morgue_path));
  }
  ExpectConsistent(*target_);
}

TEST_F(InjectTest, OpaqueResponsesAreRefused) {
  source_->Must(
      "UPDATE entries SET response_type = 4, response_padding_size = 12345 "
      "WHERE id = (SELECT max(id) FROM entries)");
  std::unique_ptr<Bundle> b = Pack(*source_, source_dir_, "opaque.zip");
  ASSERT_NE(b, nullptr);
  InjectOptions options;
  options.rename = "opaque";
  absl::StatusOr<InjectionPlan> plan = Plan(*b, *target_, options);
  ASSERT_FALSE(plan.ok());
  EXPECT_TRUE(absl::IsFailedPrecondition(plan.status()));
  EXPECT_NE(plan.status().message().find("opaque response"),
            std::string::npos)
      << plan.status();
}

TEST_F(InjectTest, OverwritingACacheWithOpaqueResponsesIsRefused) {
  std::unique_ptr<Bundle> b = Pack(*source_, source_dir_, "probe.zip");
  ASSERT_NE(b, nullptr);
  target_->Must(
      "UPDATE entries SET response_type = 4, response_padding_size = 99 "
      "WHERE id = (SELECT max(id) FROM entries)");
  InjectOptions options;
  options.overwrite = true;
  absl::StatusOr<InjectionPlan> plan = Plan(*b, *target_, options);
  ASSERT_FALSE(plan.ok());
  EXPECT_NE(plan.status().message().find("holds opaque responses"),
            std::string::npos)
      << plan.status();
}

TEST_F(InjectTest, ABundleFromSchema31GoesIntoSchema28) {
  std::unique_ptr<Bundle> b = Pack(*source_, source_dir_, "probe.zip");
  ASSERT_NE(b, nullptr);
  DowngradeToSchema28(*target_);
  InjectOptions options;
  options.rename = "from-31";
  absl::StatusOr<InjectionPlan> plan = Plan(*b, *target_, options);
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(plan->dropped_columns,
            (std::vector<std::string>{"request_body_disk_size",
                                      "response_body_disk_size",
                                      "response_credentials"}));
  ASSERT_TRUE(bundle::StageBodies(*b, *plan, target_dir_).ok());
  absl::Status ran = RunPlanAsPlainDml(*target_, *plan);
  ASSERT_TRUE(ran.ok()) << ran;
  ExpectInjected(*target_, target_dir_, *b, "from-31");
  ExpectConsistent(*target_);
}

TEST_F(InjectTest, ABundleFromSchema28GoesIntoSchema31) {
  DowngradeToSchema28(*source_);
  std::unique_ptr<Bundle> b = Pack(*source_, source_dir_, "old.zip");
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(b->meta().schema_version, 28);
  int64_t usage_before = Usage(*target_);
  InjectOptions options;
  options.rename = "from-28";
  absl::StatusOr<InjectionPlan> plan = Plan(*b, *target_, options);
  ASSERT_TRUE(plan.ok()) << plan.status();
  ASSERT_TRUE(bundle::StageBodies(*b, *plan, target_dir_).ok());
  absl::Status ran = RunPlanAsPlainDml(*target_, *plan);
  ASSERT_TRUE(ran.ok()) << ran;
  ExpectInjected(*target_, target_dir_, *b, "from-28");
  ExpectConsistent(*target_);
  // The columns the old schema lacked: disk sizes from the staged files
  // (and usage_info from them), response_credentials as Gecko writes it.
  EXPECT_EQ(target_->Int("SELECT count(*) FROM entries WHERE "
                         "response_credentials != 0"),
            0);
  int64_t bundle_bytes = 0;
  for (const bundle::StagedBody& body : plan->bodies) bundle_bytes += body.size;
  EXPECT_EQ(Usage(*target_), usage_before + bundle_bytes);
}

}  // namespace
}  // namespace quiesce::testing
