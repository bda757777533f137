// Gecko Cache API bundles: read a cache out of an image of an origin's
// caches.sqlite, pack it with its body files into a verified ZIP, and plan
// the injection of such a bundle into a live database.
//
// The bundle format is documented in docs/bundles.md. In short: a ZIP laid
// out like Appelflap's (META.json, SECURITY_INFO.json, <i>.json per entry,
// <i>.request_body / <i>.response_body raw Snappy-framed body files), with
// the SHA-256 of every part listed in META.json and checked on every read.
//
// The flow quiescectl builds on this library:
//   pack:   snapshot caches.sqlite (a standalone image, never the live
//           file) -> open it with SQLite -> PackBundle(image, cache_dir, ...)
//   inject: Bundle::Open(file) -> snapshot the live database ->
//           ReadLiveDatabase(image) -> PlanInjection(...) -> StageBodies()
//           -> run plan.steps, one injection each -> on failure
//           UnstageBodies().
//
// Thread safety: the free functions are reentrant; a Bundle may be read from
// several threads at once (its ZIP reads are serialised inside). Errors are
// absl::Status values with messages meant for the user; nothing throws.
#ifndef QUIESCE_TOOLS_BUNDLE_CACHE_BUNDLE_H_
#define QUIESCE_TOOLS_BUNDLE_CACHE_BUNDLE_H_

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

struct sqlite3;

namespace quiesce::bundle {

// ---------------------------------------------------------------------------
// Reading Gecko's schema and caches from a database image.

// Gecko's cache namespaces (dom/cache/Types.h): what `caches` in a page or
// worker sees, and the chrome-only one (the service-worker script cache).
inline constexpr int64_t kDefaultNamespace = 0;
inline constexpr int64_t kChromeOnlyNamespace = 1;

// entries.response_type values (ResponseType in DBSchema.cpp).
inline constexpr int64_t kResponseTypeOpaque = 4;

// One value as SQLite stores it.
struct SqlValue {
  enum class Type { kNull, kInteger, kReal, kText, kBlob };
  Type type = Type::kNull;
  int64_t integer = 0;
  double real = 0;
  std::string bytes;  // kText (UTF-8) or kBlob

  static SqlValue Null() { return {}; }
  static SqlValue Integer(int64_t v) { return {Type::kInteger, v, 0, {}}; }
  static SqlValue Text(std::string v) {
    return {Type::kText, 0, 0, std::move(v)};
  }
  static SqlValue Blob(std::string v) {
    return {Type::kBlob, 0, 0, std::move(v)};
  }
  bool is_null() const { return type == Type::kNull; }
  bool operator==(const SqlValue&) const = default;
};

struct ColumnInfo {
  std::string name;
  bool not_null = false;
  bool has_default = false;
};

// The schema of a caches.sqlite as the database itself says it is (PRAGMA
// user_version, PRAGMA table_info, sqlite_master): versions differ in the
// columns of `entries` (28 lacks the body disk sizes and usage_info, 31 has
// response_credentials, ...), so nothing here assumes one version.
struct SchemaInfo {
  int64_t user_version = 0;
  // table name -> its columns in order
  std::map<std::string, std::vector<ColumnInfo>> tables;
  std::set<std::string> triggers;

  bool HasTable(std::string_view table) const;
  bool HasColumn(std::string_view table, std::string_view column) const;
  const std::vector<ColumnInfo>* Columns(std::string_view table) const;
};

struct CacheSummary {
  int64_t namespace_id = kDefaultNamespace;
  std::string name;  // UTF-8
  int64_t cache_id = 0;
  int64_t entry_count = 0;
  // Sum of request and response body disk sizes (the columns Gecko's quota
  // triggers count; 0 on schemas without them).
  int64_t body_bytes = 0;
  // Entries with a padding size: opaque responses.
  int64_t padded_entries = 0;
};

struct Header {
  std::string name;
  std::string value;
  bool operator==(const Header&) const = default;
};

struct CacheEntry {
  int64_t id = 0;  // entries.id in the database it was read from
  // Every column of `entries` but id and cache_id, by name.
  std::map<std::string, SqlValue> columns;
  std::vector<Header> request_headers;
  std::vector<Header> response_headers;
  std::vector<std::string> response_url_list;

  // The column's text, or "" when it is absent or not text.
  std::string Text(std::string_view column) const;
  // The column's integer, or nullopt when it is absent or not an integer.
  std::optional<int64_t> Integer(std::string_view column) const;
  // request_url_no_query + request_url_query (the fragment is kept apart).
  std::string RequestUrl() const;
};

struct SecurityInfo {
  int64_t id = 0;
  std::string hash;  // 8 bytes: GeckoHash(data)
  std::string data;
  int64_t refcount = 0;
};

struct CacheContents {
  CacheSummary summary;
  std::vector<CacheEntry> entries;  // in entries.id order
  // security_info rows that the entries reference, by id.
  std::map<int64_t, SecurityInfo> security_info;
};

absl::StatusOr<SchemaInfo> ReadSchema(sqlite3* db);

// The named caches (rows of `storage`) of every namespace.
absl::StatusOr<std::vector<CacheSummary>> ListCaches(sqlite3* db);

// One cache with everything its entries hold. NotFound when no cache of
// that name exists in that namespace.
absl::StatusOr<CacheContents> ReadCache(sqlite3* db, int64_t namespace_id,
                                        std::string_view name);

// ---------------------------------------------------------------------------
// Packing.

struct MissingBody {
  std::filesystem::path path;  // the body file that could not be opened
  std::string request_url;     // of the entry that references it
  int attempt = 0;             // 1 for the first failure, then 2, ...
};

// The two long steps of a pack, for progress: reading (hashing) the body
// files, counted in bodies, then writing the archive, counted in per mille
// of libzip's work. kWriting with done 0 comes before libzip reads any body
// again.
enum class PackPhase { kHashing, kWriting };

struct PackOptions {
  int64_t namespace_id = kDefaultNamespace;
  // Keep Cookie, Authorization, Proxy-Authorization and Set-Cookie headers
  // (left out by default: a bundle is meant to be shared).
  bool keep_credential_headers = false;
  // The bundle's version, the app's business (Appelflap's "version").
  int64_t version = 0;
  // Called when a referenced body file cannot be opened: true to try it
  // again (the hook may wait, or restore the file), false to give up. Unset:
  // give up at once. A body that stays missing fails the pack (NotFound);
  // no bundle ever references a body it does not contain.
  std::function<bool(const MissingBody&)> on_missing_body;
  // Called as the pack goes (may be unset); `done` of `total` in the
  // phase's unit, ending with done == total.
  std::function<void(PackPhase phase, uint64_t done, uint64_t total)>
      on_progress;
};

struct PackResult {
  int64_t entry_count = 0;
  int64_t body_bytes = 0;  // bytes of body parts
  int64_t schema_version = 0;
  std::string meta_sha256;  // of META.json, which lists every other part
};

// Packs the cache `cache_name` of `image` (an open, consistent image of the
// origin's caches.sqlite, not the live file) with the body files under
// `cache_dir`/morgue into the ZIP `out`. `origin` is recorded as given
// (e.g. "http://127.0.0.1:8765"). Each body file is read once to hash it,
// on as many threads as there are cores (at most 4), and must not change
// until the pack returns (a live browser's bodies are packed from pins);
// the ZIP is written to a temporary file beside `out`,
// its central directory checked against the sizes and CRC-32s of the bytes
// hashed, then renamed: `out` is either a complete bundle that verifies or
// untouched.
absl::StatusOr<PackResult> PackBundle(sqlite3* image,
                                      const std::filesystem::path& cache_dir,
                                      std::string_view origin,
                                      std::string_view cache_name,
                                      const PackOptions& options,
                                      const std::filesystem::path& out);

// ---------------------------------------------------------------------------
// Reading a bundle.

struct BundleMeta {
  int64_t format_version = 0;
  std::string origin;
  std::string name;
  int64_t namespace_id = kDefaultNamespace;
  int64_t number_of_entries = 0;
  int64_t version = 0;
  int64_t schema_version = 0;
  std::map<std::string, std::string> parts;  // part name -> SHA-256 hex
};

struct BodyPart {
  std::string part;  // ZIP entry name, e.g. "3.response_body"
  int64_t size = 0;
};

struct BundleEntry {
  CacheEntry entry;  // columns as packed (ids and hashes of the source db)
  std::optional<BodyPart> request_body;
  std::optional<BodyPart> response_body;
};

class Bundle {
 public:
  // Opens and verifies a bundle completely before returning it: META.json
  // well formed, every part listed there present and no other, every
  // part's SHA-256 right, every entry well formed and its body parts
  // present with their recorded sizes. Any defect: an error naming it, and
  // no Bundle.
  static absl::StatusOr<std::unique_ptr<Bundle>> Open(
      const std::filesystem::path& path);

  ~Bundle();
  Bundle(const Bundle&) = delete;
  Bundle& operator=(const Bundle&) = delete;

  const BundleMeta& meta() const { return meta_; }
  // SHA-256 of META.json: it lists every other part's SHA-256, so it
  // identifies the whole bundle (what an app would sign).
  const std::string& meta_sha256() const { return meta_sha256_; }
  const std::vector<BundleEntry>& entries() const { return entries_; }
  // SECURITY_INFO.json: the source database's security_info rows, by id.
  const std::map<int64_t, SecurityInfo>& security_info() const {
    return security_info_;
  }

  // A part's bytes (not META.json's), checked again against its SHA-256.
  absl::StatusOr<std::string> ReadPart(const std::string& part) const;
  // Copies a part into `dest` (created or truncated), checking its SHA-256
  // as it goes; `dest` is removed when the copy fails. Not synced (see
  // StageBodies).
  absl::Status ExtractPart(const std::string& part,
                           const std::filesystem::path& dest) const;

 private:
  struct Archive;
  Bundle();
  std::unique_ptr<Archive> archive_;  // the open ZIP
  BundleMeta meta_;
  std::string meta_sha256_;
  std::vector<BundleEntry> entries_;
  std::map<int64_t, SecurityInfo> security_info_;
};

// ---------------------------------------------------------------------------
// Injecting.

// What the plan needs to know about the target database, read from a
// snapshot of it.
struct LiveDatabase {
  SchemaInfo schema;
  std::vector<CacheSummary> caches;
  // cache id -> morgue paths of the bodies its entries reference.
  std::map<int64_t, std::vector<std::string>> bodies_by_cache;
};

absl::StatusOr<LiveDatabase> ReadLiveDatabase(sqlite3* db);

struct InjectOptions {
  // Inject under this cache name instead of the bundle's.
  std::optional<std::string> rename;
  // Replace a cache of the same name: its entries are deleted first (the
  // cache and its storage row stay, so a page holding it sees the new
  // entries). Without it an existing name is an error.
  bool overwrite = false;
  // How many rows (entries, headers, URLs) a new cache's fill step inserts
  // at most, give or take one entry's. A page's write that meets a step
  // waits for it, so the steps are kept short enough (about 3.5 us a row
  // on the benchmark's machine, plus the commit) that such a wait stays
  // within the put's own latency: 512 rows moved the page's put p99 by
  // 1.8x, 64 by 1.03x (docs/benchmarks.md), for 1.5x the inject's time.
  int64_t rows_per_step = 64;
};

struct StagedBody {
  std::string part;         // bundle part holding the bytes
  std::string body_id;      // new id, "{uuid}"
  std::string morgue_path;  // relative to the cache directory
  int64_t size = 0;
};

// One transaction of an injection: plain DML (INSERT, UPDATE, DELETE),
// several statements separated by ";\n", with no transaction statements,
// ATTACH, DDL or PRAGMA; and its named parameters (":p1", ...) with their
// bytes, each to be bound as a blob. Text columns read them through
// CAST(:pN AS TEXT), so a channel that binds only blobs suffices.
struct PlanStep {
  std::string sql;
  std::vector<std::pair<std::string, std::string>> blobs;
  int64_t entries = 0;  // entries it inserts
};

// The parameter by which a new cache's fill and publish steps name it: its
// id as decimal text, the first step's last_insert_rowid.
inline constexpr char kCacheIdParameter[] = ":cache_id";

struct InjectionPlan {
  // The transactions, to run in order, each on its own. A new cache is
  // filled while no page can see it, so that each transaction is short:
  // steps[0] inserts its `caches` row, the middle steps its entries
  // (rows_per_step rows each), and the last its `storage` row, which is
  // what lists it to pages (Gecko finds caches through `storage` alone),
  // so pages see all of it at once. Every step after the first binds
  // kCacheIdParameter. An unpublished fill is an orphaned cache, which
  // Gecko deletes itself after an unclean shutdown;
  // DeleteUnpublishedCacheSql deletes it live. An overwrite is ONE step:
  // it deletes and inserts in the same cache.
  std::vector<PlanStep> steps;
  bool fills_new_cache = false;
  // Body files to copy from the bundle into the cache directory BEFORE the
  // rows that name them commit.
  std::vector<StagedBody> bodies;
  std::string cache_name;
  int64_t namespace_id = kDefaultNamespace;
  int64_t entry_count = 0;
  // Bundle columns that the live schema does not have, left out.
  std::vector<std::string> dropped_columns;
  // With overwrite: morgue paths of the bodies of the entries it deletes,
  // as the live snapshot showed them. Gecko does not delete them while the
  // origin runs, and a page may still read them: quiescectl lists them for
  // the shim to remove when no page can (docs/bundles.md).
  std::vector<std::string> orphaned_bodies;
};

// Plans the injection of `bundle` into a database that `live` describes.
// Refuses (FailedPrecondition) opaque responses, an existing cache name
// without overwrite, an overwrite of a cache holding opaque responses, and
// a live schema that needs a column the bundle cannot fill.
absl::StatusOr<InjectionPlan> PlanInjection(const Bundle& bundle,
                                            const LiveDatabase& live,
                                            const InjectOptions& options);

// Copies the plan's body files into `cache_dir` (a .tmp file each, renamed
// to .final once complete). On failure removes what it wrote. Not synced,
// like Gecko's own bodies: its BodyFinalizeWrite renames a body written
// through a plain file stream and commits the row, with no fsync, so a
// power loss can cost an injected body no more than one of the page's.
// Syncing them put the page's commits behind the bundle's writeback (a
// put waited 650 ms during a 400 MB injection, docs/benchmarks.md).
absl::Status StageBodies(const Bundle& bundle, const InjectionPlan& plan,
                         const std::filesystem::path& cache_dir);

// Removes the plan's staged body files (after a failed injection).
void UnstageBodies(const InjectionPlan& plan,
                   const std::filesystem::path& cache_dir);

// Runs one step's statements on `db` (in the caller's transaction), binding
// kCacheIdParameter to `cache_id` if it uses it.
absl::Status ExecuteStep(sqlite3* db, const PlanStep& step,
                         const std::string& cache_id);

// Runs all of the plan's steps on `db` in one BEGIN IMMEDIATE transaction
// with plain SQLite: for offline databases and tests. Live databases go
// through quiesce's injection instead, a step at a time.
absl::Status ExecutePlan(sqlite3* db, const InjectionPlan& plan);

// Plain DML that deletes cache `cache_id` with its entries, their headers
// and URL lists, and its share of security_info, if no `storage` row names
// it: an injection's fill that was never published. Does nothing to a
// published cache, nor to an id that no longer exists. An id read from a
// dead injection's manifest names that fill or nothing: Gecko's `caches.id`
// is AUTOINCREMENT, never reused, so once Gecko deleted the fill no later
// cache of the page's (an unpublished one it still holds, say) gets it.
std::string DeleteUnpublishedCacheSql(int64_t cache_id);

}  // namespace quiesce::bundle

#endif  // QUIESCE_TOOLS_BUNDLE_CACHE_BUNDLE_H_
