// Reading Gecko's cache storage and packing it, from copies of what a real
// Firefox left on disk (a clean quit, and a SIGTERM with the state in the
// WAL).
#include <gtest/gtest.h>

#include <algorithm>
#include <map>

#include "bundle_fixture.h"
#include "gecko_names.h"

namespace quiesce::testing {
namespace {

namespace fs = std::filesystem;
using bundle::Bundle;
using bundle::BundleEntry;
using bundle::PackOptions;

const std::string kSnappyStreamId("\xff\x06\x00\x00sNaPpY", 10);

std::string HeaderValue(const std::vector<bundle::Header>& headers,
                        const std::string& name) {
  for (const bundle::Header& h : headers) {
    if (h.name == name) return h.value;
  }
  return "<absent>";
}

class PackTest : public ::testing::TestWithParam<const char*> {};

TEST_P(PackTest, ListsTheFixtureCache) {
  QUIESCE_REQUIRE_FIXTURE(fixture, GetParam());
  TempDir tmp;
  fs::path cache_dir = CopyFixture(*fixture, tmp.path(), "cache");
  Conn db((cache_dir / "caches.sqlite").string(), "unix");
  absl::StatusOr<std::vector<bundle::CacheSummary>> caches =
      bundle::ListCaches(db.get());
  ASSERT_TRUE(caches.ok()) << caches.status();
  ASSERT_EQ(caches->size(), 1u);
  const bundle::CacheSummary& cache = (*caches)[0];
  EXPECT_EQ(cache.name, kCacheName);
  EXPECT_EQ(cache.namespace_id, bundle::kDefaultNamespace);
  EXPECT_EQ(cache.entry_count, kFixtureEntries);
  EXPECT_EQ(cache.padded_entries, 0);
  EXPECT_EQ(cache.body_bytes,
            db.Int("SELECT total_disk_usage FROM usage_info WHERE id = 1"));
  int64_t on_disk = 0;
  for (const fs::directory_entry& e :
       fs::recursive_directory_iterator(cache_dir / "morgue")) {
    if (e.path().extension() == ".final") on_disk += e.file_size();
  }
  EXPECT_EQ(cache.body_bytes, on_disk);

  absl::StatusOr<bundle::SchemaInfo> schema = bundle::ReadSchema(db.get());
  ASSERT_TRUE(schema.ok()) << schema.status();
  EXPECT_EQ(schema->user_version, 31);
  EXPECT_TRUE(schema->HasColumn("entries", "response_body_disk_size"));
  EXPECT_TRUE(schema->triggers.count("entries_insert_trigger"));
}

TEST_P(PackTest, PacksEveryEntryWithItsHeadersAndBodies) {
  QUIESCE_REQUIRE_FIXTURE(fixture, GetParam());
  TempDir tmp;
  fs::path cache_dir = CopyFixture(*fixture, tmp.path(), "cache");
  Conn db((cache_dir / "caches.sqlite").string(), "unix");
  fs::path out = tmp.path() / "probe.zip";
  PackOptions options;
  options.version = 7;
  absl::StatusOr<bundle::PackResult> packed = bundle::PackBundle(
      db.get(), cache_dir, kOrigin, kCacheName, options, out);
  ASSERT_TRUE(packed.ok()) << packed.status();
  EXPECT_EQ(packed->entry_count, kFixtureEntries);
  EXPECT_EQ(packed->schema_version, 31);
  EXPECT_EQ(packed->body_bytes,
            db.Int("SELECT total_disk_usage FROM usage_info WHERE id = 1"));

  absl::StatusOr<std::unique_ptr<Bundle>> bundle = Bundle::Open(out);
  ASSERT_TRUE(bundle.ok()) << bundle.status();
  const bundle::BundleMeta& meta = (*bundle)->meta();
  EXPECT_EQ(meta.origin, kOrigin);
  EXPECT_EQ(meta.name, kCacheName);
  EXPECT_EQ(meta.namespace_id, 0);
  EXPECT_EQ(meta.number_of_entries, kFixtureEntries);
  EXPECT_EQ(meta.version, 7);
  EXPECT_EQ(meta.schema_version, 31);
  EXPECT_EQ((*bundle)->meta_sha256(), packed->meta_sha256);
  EXPECT_FALSE((*bundle)->ReadPart("META.json").ok());

  std::vector<std::string> urls;
  for (const BundleEntry& e : (*bundle)->entries()) {
    std::string url = e.entry.RequestUrl();
    urls.push_back(url);
    std::string index = url.substr(url.rfind('/') + 1);
    EXPECT_EQ(e.entry.Text("request_method"), "GET");
    EXPECT_EQ(e.entry.Integer("response_status"), 200);
    EXPECT_EQ(HeaderValue(e.entry.response_headers, "Content-Type"),
              "text/plain");
    EXPECT_EQ(HeaderValue(e.entry.response_headers, "X-Idx"), index);
    // The body part is the morgue file, byte for byte.
    ASSERT_TRUE(e.response_body.has_value()) << url;
    EXPECT_FALSE(e.request_body.has_value()) << url;
    std::optional<std::string> morgue =
        bundle::MorguePathOfBodyId(e.entry.Text("response_body_id"));
    ASSERT_TRUE(morgue.has_value());
    absl::StatusOr<std::string> body =
        (*bundle)->ReadPart(e.response_body->part);
    ASSERT_TRUE(body.ok()) << body.status();
    EXPECT_EQ(*body, ReadFile(cache_dir / *morgue)) << url;
    EXPECT_EQ(body->substr(0, kSnappyStreamId.size()), kSnappyStreamId);
    EXPECT_EQ(static_cast<int64_t>(body->size()), e.response_body->size);
    EXPECT_EQ(e.entry.Integer("response_body_disk_size"),
              e.response_body->size);
  }
  std::vector<std::string> expected = FixtureUrls();
  std::sort(urls.begin(), urls.end());
  std::sort(expected.begin(), expected.end());
  EXPECT_EQ(urls, expected);
  EXPECT_TRUE((*bundle)->security_info().empty());  // plain http
}

INSTANTIATE_TEST_SUITE_P(Fixtures, PackTest,
                         ::testing::Values("clean", "killed"));

TEST(PackBundleTest, PackingTwiceGivesTheSameBytes) {
  QUIESCE_REQUIRE_FIXTURE(fixture, "clean");
  TempDir tmp;
  fs::path cache_dir = CopyFixture(*fixture, tmp.path(), "cache");
  Conn db((cache_dir / "caches.sqlite").string(), "unix");
  for (const char* name : {"a.zip", "b.zip"}) {
    ASSERT_TRUE(bundle::PackBundle(db.get(), cache_dir, kOrigin, kCacheName,
                                   {}, tmp.path() / name)
                    .ok());
  }
  EXPECT_EQ(ReadFile(tmp.path() / "a.zip"), ReadFile(tmp.path() / "b.zip"));
}

TEST(PackBundleTest, CredentialHeadersAreLeftOutUnlessKept) {
  QUIESCE_REQUIRE_FIXTURE(fixture, "clean");
  TempDir tmp;
  fs::path cache_dir = CopyFixture(*fixture, tmp.path(), "cache");
  Conn db((cache_dir / "caches.sqlite").string(), "unix");
  db.Must(
      "INSERT INTO request_headers (name, value, entry_id) VALUES "
      "('Cookie', 'session=1', 2), ('authorization', 'Bearer x', 2), "
      "('Accept', 'text/plain', 2), ('X-Other-Entry', '1', 999999);"
      "INSERT INTO response_headers (name, value, entry_id) VALUES "
      "('Set-Cookie', 'session=2', 2)");
  std::string url =
      db.Text("SELECT request_url_no_query FROM entries WHERE id = 2");
  for (bool keep : {false, true}) {
    PackOptions options;
    options.keep_credential_headers = keep;
    fs::path out = tmp.path() / (keep ? "kept.zip" : "default.zip");
    ASSERT_TRUE(bundle::PackBundle(db.get(), cache_dir, kOrigin, kCacheName,
                                   options, out)
                    .ok());
    absl::StatusOr<std::unique_ptr<Bundle>> bundle = Bundle::Open(out);
    ASSERT_TRUE(bundle.ok()) << bundle.status();
    auto it = std::find_if(
        (*bundle)->entries().begin(), (*bundle)->entries().end(),
        [&](const BundleEntry& e) { return e.entry.RequestUrl() == url; });
    ASSERT_NE(it, (*bundle)->entries().end());
    const std::string absent = "<absent>";
    EXPECT_EQ(HeaderValue(it->entry.request_headers, "Accept"), "text/plain");
    EXPECT_EQ(HeaderValue(it->entry.request_headers, "Cookie"),
              keep ? "session=1" : absent);
    EXPECT_EQ(HeaderValue(it->entry.request_headers, "authorization"),
              keep ? "Bearer x" : absent);
    EXPECT_EQ(HeaderValue(it->entry.response_headers, "Set-Cookie"),
              keep ? "session=2" : absent);
    EXPECT_EQ(HeaderValue(it->entry.response_headers, "X-Idx"), "1");
    // A header row of no entry of this cache reaches none of its entries.
    for (const BundleEntry& e : (*bundle)->entries()) {
      EXPECT_EQ(HeaderValue(e.entry.request_headers, "X-Other-Entry"),
                absent);
    }
  }
}

TEST(PackBundleTest, AMissingBodyIsAClearErrorAndLeavesNoFile) {
  QUIESCE_REQUIRE_FIXTURE(fixture, "clean");
  TempDir tmp;
  fs::path cache_dir = CopyFixture(*fixture, tmp.path(), "cache");
  Conn db((cache_dir / "caches.sqlite").string(), "unix");
  std::string body_id =
      db.Text("SELECT response_body_id FROM entries WHERE id = 2");
  fs::path body = cache_dir / *bundle::MorguePathOfBodyId(body_id);
  fs::remove(body);

  PackOptions options;
  std::vector<int> attempts;
  options.on_missing_body = [&](const bundle::MissingBody& missing) {
    EXPECT_EQ(missing.path, body);
    EXPECT_EQ(missing.request_url, std::string(kOrigin) + "/item/1");
    attempts.push_back(missing.attempt);
    return missing.attempt < 3;
  };
  fs::path out = tmp.path() / "probe.zip";
  absl::StatusOr<bundle::PackResult> packed = bundle::PackBundle(
      db.get(), cache_dir, kOrigin, kCacheName, options, out);
  ASSERT_FALSE(packed.ok());
  EXPECT_TRUE(absl::IsNotFound(packed.status())) << packed.status();
  EXPECT_NE(packed.status().message().find(body_id), std::string::npos)
      << packed.status();
  EXPECT_NE(packed.status().message().find("/item/1"), std::string::npos);
  EXPECT_EQ(attempts, (std::vector<int>{1, 2, 3}));
  // Nothing left behind: no bundle, no scratch directory.
  std::vector<fs::path> left;
  for (const fs::directory_entry& e : fs::directory_iterator(tmp.path())) {
    left.push_back(e.path().filename());
  }
  EXPECT_EQ(left, std::vector<fs::path>{"cache"});
}

TEST(PackBundleTest, TheRetryHookCanBringABodyBack) {
  QUIESCE_REQUIRE_FIXTURE(fixture, "clean");
  TempDir tmp;
  fs::path cache_dir = CopyFixture(*fixture, tmp.path(), "cache");
  Conn db((cache_dir / "caches.sqlite").string(), "unix");
  fs::path body = cache_dir / *bundle::MorguePathOfBodyId(db.Text(
                                  "SELECT response_body_id FROM entries "
                                  "WHERE id = 3"));
  std::string bytes = ReadFile(body);
  fs::remove(body);
  PackOptions options;
  int calls = 0;
  options.on_missing_body = [&](const bundle::MissingBody&) {
    ++calls;
    WriteFile(body, bytes);
    return true;
  };
  fs::path out = tmp.path() / "probe.zip";
  absl::StatusOr<bundle::PackResult> packed = bundle::PackBundle(
      db.get(), cache_dir, kOrigin, kCacheName, options, out);
  ASSERT_TRUE(packed.ok()) << packed.status();
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(packed->entry_count, kFixtureEntries);
}

// The window between a body's one read (its hash in META.json) and
// libzip's copy of it: a body rewritten there must not reach `out`; the
// central directory's CRC-32 gives it away. The progress hook's first
// kWriting call is in that window.
TEST(PackBundleTest, ABodyChangedAfterItWasHashedFailsThePack) {
  QUIESCE_REQUIRE_FIXTURE(fixture, "clean");
  TempDir tmp;
  fs::path cache_dir = CopyFixture(*fixture, tmp.path(), "cache");
  Conn db((cache_dir / "caches.sqlite").string(), "unix");
  fs::path body = cache_dir / *bundle::MorguePathOfBodyId(db.Text(
                                  "SELECT response_body_id FROM entries "
                                  "WHERE id = 2"));
  std::string bytes = ReadFile(body);
  ASSERT_FALSE(bytes.empty());
  PackOptions options;
  std::vector<std::pair<bundle::PackPhase, uint64_t>> seen;
  options.on_progress = [&](bundle::PackPhase phase, uint64_t done,
                            uint64_t total) {
    if (phase == bundle::PackPhase::kWriting && done == 0) {
      std::string changed = bytes;
      changed[changed.size() / 2] ^= 0x55;  // same size, other bytes
      WriteFile(body, changed);
    }
    if (done == total) seen.emplace_back(phase, total);
  };
  fs::path out = tmp.path() / "probe.zip";
  absl::StatusOr<bundle::PackResult> packed = bundle::PackBundle(
      db.get(), cache_dir, kOrigin, kCacheName, options, out);
  ASSERT_FALSE(packed.ok());
  EXPECT_TRUE(absl::IsDataLoss(packed.status())) << packed.status();
  EXPECT_NE(packed.status().message().find("change while it was packed"),
            std::string::npos)
      << packed.status();
  EXPECT_FALSE(fs::exists(out));
  // Both phases ran to their end: the check came after libzip's copy.
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0].first, bundle::PackPhase::kHashing);
  EXPECT_EQ(seen[1], std::make_pair(bundle::PackPhase::kWriting,
                                    uint64_t{1000}));
}

TEST(PackBundleTest, ProgressCountsEveryBodyThenTheArchive) {
  QUIESCE_REQUIRE_FIXTURE(fixture, "clean");
  TempDir tmp;
  fs::path cache_dir = CopyFixture(*fixture, tmp.path(), "cache");
  Conn db((cache_dir / "caches.sqlite").string(), "unix");
  int64_t bodies = db.Int(
      "SELECT count(request_body_id) + count(response_body_id) FROM entries");
  PackOptions options;
  std::vector<std::pair<bundle::PackPhase, uint64_t>> seen;
  options.on_progress = [&](bundle::PackPhase phase, uint64_t done,
                            uint64_t total) {
    EXPECT_LE(done, total);
    EXPECT_EQ(total, phase == bundle::PackPhase::kHashing
                         ? static_cast<uint64_t>(bodies)
                         : 1000u);
    if (!seen.empty() && seen.back().first == phase) {
      EXPECT_GT(done, seen.back().second);
    }
    seen.emplace_back(phase, done);
  };
  ASSERT_TRUE(bundle::PackBundle(db.get(), cache_dir, kOrigin, kCacheName,
                                 options, tmp.path() / "probe.zip")
                  .ok());
  ASSERT_FALSE(seen.empty());
  EXPECT_EQ(seen.front(), std::make_pair(bundle::PackPhase::kHashing,
                                         uint64_t{0}));
  EXPECT_EQ(seen.back(), std::make_pair(bundle::PackPhase::kWriting,
                                        uint64_t{1000}));
  EXPECT_EQ(std::count(seen.begin(), seen.end(),
                       std::make_pair(bundle::PackPhase::kHashing,
                                      static_cast<uint64_t>(bodies))),
            1);
}

TEST(PackBundleTest, AnUnknownCacheIsNotFound) {
  QUIESCE_REQUIRE_FIXTURE(fixture, "clean");
  TempDir tmp;
  fs::path cache_dir = CopyFixture(*fixture, tmp.path(), "cache");
  Conn db((cache_dir / "caches.sqlite").string(), "unix");
  absl::StatusOr<bundle::PackResult> packed = bundle::PackBundle(
      db.get(), cache_dir, kOrigin, "nope", {}, tmp.path() / "x.zip");
  EXPECT_TRUE(absl::IsNotFound(packed.status())) << packed.status();
  EXPECT_FALSE(fs::exists(tmp.path() / "x.zip"));
}

}  // namespace
}  // namespace quiesce::testing
