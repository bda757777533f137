#include "gecko_origin.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <cstdio>
#include <optional>
#include <set>
#include <system_error>

#include "cache_schema.h"
#include "digest.h"
#include "gecko_names.h"
#include "snappy_frame.h"
#include "web_origin.h"

namespace quiesce::hostsim {

namespace {

namespace fs = std::filesystem;

// Gecko's enums as DBSchema.cpp stores them, for a same-origin
// `cache.add(url)`: a cors-mode GET with credentials same-origin, fetched
// (TYPE_FETCH), following redirects; a basic response with immutable
// headers.
constexpr int kGuardRequest = 1;
constexpr int kGuardImmutable = 4;
constexpr int kModeCors = 2;
constexpr int kCredentialsSameOrigin = 1;
constexpr int kContentPolicyFetch = 20;
constexpr int kResponseTypeBasic = 0;

// A stand-in for the serialized TransportSecurityInfo Gecko stores per
// https response (its certificate chain makes it a few KiB).
constexpr size_t kSecurityInfoSize = 2048;

// Gecko vacuums incrementally when more pages than one growth increment
// (32 KiB of 4 KiB pages) are free.
constexpr int64_t kMaxFreePages = 8;

std::string FileUri(const fs::path& path) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string uri = "file:";
  for (unsigned char c : path.string()) {
    if (c == '%' || c == '?' || c == '#' || c < 0x20) {
      uri += '%';
      uri += kHex[c >> 4];
      uri += kHex[c & 15];
    } else {
      uri += static_cast<char>(c);
    }
  }
  // Gecko opens caches.sqlite with SQLITE_OPEN_SHAREDCACHE and
  // cache=private: the URI parameter wins, the cache is the connection's.
  return uri + "?cache=private";
}

bool WriteWhole(const fs::path& path, std::string_view bytes,
                std::string* error) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
                        0600);
  if (fd < 0) {
    *error = path.string() + ": " + std::strerror(errno);
    return false;
  }
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      *error = path.string() + ": " + std::strerror(errno);
      ::close(fd);
      return false;
    }
    done += static_cast<size_t>(n);
  }
  if (::close(fd) != 0) {
    *error = path.string() + ": " + std::strerror(errno);
    return false;
  }
  return true;
}

// An empty view may have no data pointer, which SQLite would bind as NULL:
// Gecko's columns hold '' there (request_url_query NOT NULL).
void BindText(sqlite3_stmt* stmt, int index, std::string_view text) {
  sqlite3_bind_text(stmt, index, text.empty() ? "" : text.data(),
                    static_cast<int>(text.size()), SQLITE_TRANSIENT);
}

void BindBlob(sqlite3_stmt* stmt, int index, std::string_view bytes) {
  sqlite3_bind_blob(stmt, index, bytes.empty() ? "" : bytes.data(),
                    static_cast<int>(bytes.size()), SQLITE_TRANSIENT);
}

std::string ColumnText(sqlite3_stmt* stmt, int column) {
  const unsigned char* text = sqlite3_column_text(stmt, column);
  return text ? reinterpret_cast<const char*>(text) : "";
}

int64_t ElapsedUs(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::steady_clock::now() - since)
      .count();
}

}  // namespace

GeckoOrigin::GeckoOrigin(std::string origin, std::string cache_name,
                         fs::path cache_dir)
    : origin_(std::move(origin)),
      cache_name_(std::move(cache_name)),
      cache_dir_(std::move(cache_dir)) {
  if (origin_.rfind("https://", 0) == 0) {
    while (security_info_.size() < kSecurityInfoSize) {
      security_info_ += "hostsim transport security info for " + origin_ + ";";
    }
  }
}

std::unique_ptr<GeckoOrigin> GeckoOrigin::Open(const fs::path& profile,
                                               const std::string& origin,
                                               const std::string& cache_name,
                                               std::string* error) {
  // The directory quiescectl looks for: one mapping, so the simulator
  // cannot hide a naming mismatch from the bundle tests.
  const auto parsed = bundle::ParseOrigin(origin);
  if (!parsed) {
    *error = "\"" + origin + "\" is not an http(s) origin";
    return nullptr;
  }
  std::error_code ec;
  fs::path cache_dir =
      profile / "storage" / "default" / parsed->directory / "cache";
  fs::create_directories(cache_dir / "morgue", ec);
  if (!ec) cache_dir = fs::canonical(cache_dir, ec);
  if (ec) {
    *error = cache_dir.string() + ": " + ec.message();
    return nullptr;
  }
  std::unique_ptr<GeckoOrigin> self(
      new GeckoOrigin(origin, cache_name, cache_dir));
  // Total padding of opaque responses (a big-endian int64); this load has
  // none. The marker says the origin is open: a crash leaves it, and the
  // next open then cleans up orphaned caches and bodies.
  const bool unclean = fs::exists(cache_dir / "context_open.marker", ec);
  if ((!fs::exists(cache_dir / ".padding", ec) &&
       !WriteWhole(cache_dir / ".padding", std::string(8, '\0'), error)) ||
      !WriteWhole(cache_dir / "context_open.marker", "", error)) {
    return nullptr;
  }
  const int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
                    SQLITE_OPEN_URI | SQLITE_OPEN_SHAREDCACHE;
  if (sqlite3_open_v2(FileUri(self->db_path()).c_str(), &self->db_, flags,
                      nullptr) != SQLITE_OK) {
    *error = self->db_path().string() + ": " + sqlite3_errmsg(self->db_);
    return nullptr;  // the destructor closes the failed handle
  }
  self->statements_ = std::make_unique<StatementCache>(self->db_);
  if (!ConfigureCacheConnection(self->db_, error) ||
      !CreateOrCheckCacheSchema(self->db_, error) ||
      (unclean && !self->CleanUpAfterUncleanShutdown(error)) ||
      !self->OpenCache(error)) {
    *error = origin + ": " + *error;
    return nullptr;
  }
  return self;
}

bool GeckoOrigin::CleanUpAfterUncleanShutdown(std::string* error) {
  static const char kBodies[] =
      "SELECT request_body_id FROM entries WHERE request_body_id IS NOT NULL "
      "AND cache_id IN (SELECT id FROM caches WHERE id NOT IN "
      "(SELECT cache_id FROM storage)) UNION ALL "
      "SELECT response_body_id FROM entries WHERE response_body_id IS NOT "
      "NULL AND cache_id IN (SELECT id FROM caches WHERE id NOT IN "
      "(SELECT cache_id FROM storage))";
  auto ids = [&](const char* sql, std::set<std::string>* out) {
    sqlite3_stmt* st = nullptr;
    if (sqlite3_prepare_v2(db_, sql, -1, &st, nullptr) != SQLITE_OK) {
      sqlite3_finalize(st);
      return StatementError("reading body ids", error);
    }
    while (sqlite3_step(st) == SQLITE_ROW) {
      if (const unsigned char* t = sqlite3_column_text(st, 0)) {
        out->emplace(reinterpret_cast<const char*>(t));
      }
    }
    sqlite3_finalize(st);
    return true;
  };
  std::set<std::string> orphaned_cache_bodies, known;
  if (!Exec("BEGIN IMMEDIATE", error)) return false;
  const bool ok =
      ids(kBodies, &orphaned_cache_bodies) &&
      Exec("CREATE TEMP TABLE orphaned AS SELECT id FROM caches WHERE id "
           "NOT IN (SELECT cache_id FROM storage);"
           "UPDATE security_info SET refcount = refcount - (SELECT count(*) "
           "FROM entries e WHERE e.response_security_info_id = "
           "security_info.id AND e.cache_id IN orphaned);"
           "DELETE FROM security_info WHERE refcount <= 0;"
           "DELETE FROM request_headers WHERE entry_id IN (SELECT id FROM "
           "entries WHERE cache_id IN orphaned);"
           "DELETE FROM response_headers WHERE entry_id IN (SELECT id FROM "
           "entries WHERE cache_id IN orphaned);"
           "DELETE FROM response_url_list WHERE entry_id IN (SELECT id FROM "
           "entries WHERE cache_id IN orphaned);"
           "DELETE FROM entries WHERE cache_id IN orphaned;"
           "DELETE FROM caches WHERE id IN orphaned;",
           error) &&
      ids("SELECT request_body_id FROM entries WHERE request_body_id IS NOT "
          "NULL UNION SELECT response_body_id FROM entries WHERE "
          "response_body_id IS NOT NULL",
          &known);
  const int64_t caches = ok ? sqlite3_changes(db_) : 0;
  if (!ok || !Exec("COMMIT; DROP TABLE temp.orphaned", error)) {
    Rollback();
    return false;
  }
  std::error_code ec;
  for (const std::string& id : orphaned_cache_bodies) {
    fs::remove(cache_dir_ / *bundle::MorguePathOfBodyId(id), ec);
  }
  int unreferenced = 0;
  for (fs::recursive_directory_iterator it(cache_dir_ / "morgue", ec), end;
       !ec && it != end; it.increment(ec)) {
    const fs::path& path = it->path();
    if (path.extension() != ".final" || known.count(path.stem().string())) {
      continue;
    }
    std::error_code ignored;
    if (fs::remove(path, ignored)) {
      ++unreferenced;
      std::printf("hostsim: unclean start removed unreferenced body %s\n",
                  path.stem().c_str());
    }
  }
  std::printf("hostsim: unclean start of %s: %lld orphaned caches deleted "
              "(%zu bodies), %d unreferenced bodies removed\n",
              origin_.c_str(), static_cast<long long>(caches),
              orphaned_cache_bodies.size(), unreferenced);
  std::fflush(stdout);
  return true;
}

GeckoOrigin::~GeckoOrigin() {
  std::string ignored;
  Close(&ignored);
}

bool GeckoOrigin::Exec(const char* sql, std::string* error) {
  if (sqlite3_exec(db_, sql, nullptr, nullptr, nullptr) == SQLITE_OK) {
    return true;
  }
  *error = std::string(sql) + ": " + sqlite3_errmsg(db_);
  return false;
}

bool GeckoOrigin::StatementError(const char* what, std::string* error) {
  *error = std::string(what) + ": " + sqlite3_errmsg(db_);
  return false;
}

void GeckoOrigin::Rollback() {
  if (!sqlite3_get_autocommit(db_)) {
    sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
  }
}

bool GeckoOrigin::OpenCache(std::string* error) {
  const std::optional<std::string> key = bundle::Utf8ToUtf16Le(cache_name_);
  if (!key) {
    *error = "cache name is not UTF-8";
    return false;
  }
  sqlite3_stmt* find = statements_->Get(
      "SELECT cache_id FROM storage WHERE namespace = 0 AND key = ?1");
  if (find == nullptr) return StatementError("storage lookup", error);
  BindBlob(find, 1, *key);
  const int rc = sqlite3_step(find);
  if (rc == SQLITE_ROW) {
    cache_id_ = sqlite3_column_int64(find, 0);
    sqlite3_reset(find);
    return true;
  }
  if (rc != SQLITE_DONE) return StatementError("storage lookup", error);
  sqlite3_reset(find);
  // CacheStorage.open of a new name: a caches row and its storage row.
  if (!Exec("BEGIN IMMEDIATE", error)) return false;
  sqlite3_stmt* cache = statements_->Get("INSERT INTO caches DEFAULT VALUES");
  if (cache == nullptr || sqlite3_step(cache) != SQLITE_DONE) {
    StatementError("INSERT INTO caches", error);
    Rollback();
    return false;
  }
  cache_id_ = sqlite3_last_insert_rowid(db_);
  sqlite3_stmt* storage = statements_->Get(
      "INSERT INTO storage (namespace, key, cache_id) VALUES (0, ?1, ?2)");
  if (storage == nullptr) {
    StatementError("INSERT INTO storage", error);
    Rollback();
    return false;
  }
  BindBlob(storage, 1, *key);
  sqlite3_bind_int64(storage, 2, cache_id_);
  if (sqlite3_step(storage) != SQLITE_DONE) {
    StatementError("INSERT INTO storage", error);
    Rollback();
    return false;
  }
  if (!Exec("COMMIT", error)) {
    Rollback();
    return false;
  }
  return true;
}

bool GeckoOrigin::FindMatches(std::string_view url_no_query,
                              std::string_view query,
                              std::vector<Matched>* matches,
                              std::string* error) {
  // Gecko's QueryCache looks entries up by the two hashes (the index) and
  // then compares the URLs themselves.
  sqlite3_stmt* st = statements_->Get(
      "SELECT id, request_body_id, response_body_id, "
      "response_security_info_id FROM entries WHERE cache_id = ?1 AND "
      "request_url_no_query_hash = ?2 AND request_url_query_hash = ?3 AND "
      "request_url_no_query = ?4 AND request_url_query = ?5");
  if (st == nullptr) return StatementError("entry lookup", error);
  sqlite3_bind_int64(st, 1, cache_id_);
  BindBlob(st, 2, bundle::GeckoHash(url_no_query));
  BindBlob(st, 3, bundle::GeckoHash(query));
  BindText(st, 4, url_no_query);
  BindText(st, 5, query);
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    Matched m;
    m.id = sqlite3_column_int64(st, 0);
    for (int column : {1, 2}) {
      if (sqlite3_column_type(st, column) != SQLITE_NULL) {
        m.body_ids.push_back(ColumnText(st, column));
      }
    }
    m.security_info_id = sqlite3_column_int64(st, 3);
    matches->push_back(std::move(m));
  }
  sqlite3_reset(st);
  return rc == SQLITE_DONE || StatementError("entry lookup", error);
}

bool GeckoOrigin::RemoveEntries(const std::vector<Matched>& matches,
                                std::string* error) {
  for (const Matched& m : matches) {
    // Headers and the URL list go with the entry (ON DELETE CASCADE).
    sqlite3_stmt* del = statements_->Get("DELETE FROM entries WHERE id = ?1");
    if (del == nullptr) return StatementError("DELETE FROM entries", error);
    sqlite3_bind_int64(del, 1, m.id);
    if (sqlite3_step(del) != SQLITE_DONE) {
      return StatementError("DELETE FROM entries", error);
    }
    if (m.security_info_id == 0) continue;
    // DeleteSecurityInfoList: one reference fewer; the row goes at zero.
    sqlite3_stmt* unref = statements_->Get(
        "UPDATE security_info SET refcount = refcount - 1 WHERE id = ?1");
    if (unref == nullptr) return StatementError("security_info", error);
    sqlite3_bind_int64(unref, 1, m.security_info_id);
    if (sqlite3_step(unref) != SQLITE_DONE) {
      return StatementError("security_info", error);
    }
    sqlite3_stmt* drop = statements_->Get(
        "DELETE FROM security_info WHERE id = ?1 AND refcount < 1");
    if (drop == nullptr) return StatementError("security_info", error);
    sqlite3_bind_int64(drop, 1, m.security_info_id);
    if (sqlite3_step(drop) != SQLITE_DONE) {
      return StatementError("security_info", error);
    }
  }
  return true;
}

bool GeckoOrigin::AddSecurityInfoRef(int64_t* id, std::string* error) {
  *id = 0;
  if (security_info_.empty()) return true;
  const std::string hash = bundle::GeckoHash(security_info_);
  sqlite3_stmt* find =
      statements_->Get("SELECT id, data FROM security_info WHERE hash = ?1");
  if (find == nullptr) return StatementError("security_info", error);
  BindBlob(find, 1, hash);
  int rc;
  while ((rc = sqlite3_step(find)) == SQLITE_ROW) {
    const std::string_view data(
        static_cast<const char*>(sqlite3_column_blob(find, 1)),
        static_cast<size_t>(sqlite3_column_bytes(find, 1)));
    if (data == security_info_) {
      *id = sqlite3_column_int64(find, 0);
      break;
    }
  }
  sqlite3_reset(find);
  if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
    return StatementError("security_info", error);
  }
  if (*id != 0) {
    sqlite3_stmt* ref = statements_->Get(
        "UPDATE security_info SET refcount = refcount + 1 WHERE id = ?1");
    if (ref == nullptr) return StatementError("security_info", error);
    sqlite3_bind_int64(ref, 1, *id);
    return sqlite3_step(ref) == SQLITE_DONE ||
           StatementError("security_info", error);
  }
  sqlite3_stmt* insert = statements_->Get(
      "INSERT INTO security_info (hash, data, refcount) VALUES (?1, ?2, 1)");
  if (insert == nullptr) return StatementError("security_info", error);
  BindBlob(insert, 1, hash);
  BindBlob(insert, 2, security_info_);
  if (sqlite3_step(insert) != SQLITE_DONE) {
    return StatementError("security_info", error);
  }
  *id = sqlite3_last_insert_rowid(db_);
  return true;
}

bool GeckoOrigin::InsertEntry(const std::string& url,
                              std::string_view url_no_query,
                              std::string_view query,
                              const std::string& body_id,
                              int64_t body_disk_size, int64_t security_info_id,
                              std::string* error) {
  sqlite3_stmt* st = statements_->Get(
      "INSERT INTO entries (request_method, request_url_no_query, "
      "request_url_no_query_hash, request_url_query, request_url_query_hash, "
      "request_referrer, request_headers_guard, request_mode, "
      "request_credentials, request_contentpolicytype, request_cache, "
      "request_body_id, response_type, response_status, "
      "response_status_text, response_headers_guard, response_body_id, "
      "response_security_info_id, response_principal_info, cache_id, "
      "request_redirect, request_referrer_policy, request_integrity, "
      "request_url_fragment, response_padding_size, request_body_disk_size, "
      "response_body_disk_size, response_credentials) VALUES ('GET', ?1, ?2, "
      "?3, ?4, 'about:client', ?5, ?6, ?7, ?8, 0, NULL, ?9, 200, 'OK', ?10, "
      "?11, ?12, ?13, ?14, 0, 0, '', '', NULL, NULL, ?15, 0)");
  if (st == nullptr) return StatementError("INSERT INTO entries", error);
  BindText(st, 1, url_no_query);
  BindBlob(st, 2, bundle::GeckoHash(url_no_query));
  BindText(st, 3, query);
  BindBlob(st, 4, bundle::GeckoHash(query));
  sqlite3_bind_int(st, 5, kGuardRequest);
  sqlite3_bind_int(st, 6, kModeCors);
  sqlite3_bind_int(st, 7, kCredentialsSameOrigin);
  sqlite3_bind_int(st, 8, kContentPolicyFetch);
  sqlite3_bind_int(st, 9, kResponseTypeBasic);
  sqlite3_bind_int(st, 10, kGuardImmutable);
  BindText(st, 11, body_id);
  if (security_info_id != 0) sqlite3_bind_int64(st, 12, security_info_id);
  BindText(st, 13, origin_ + "/index.html");  // the page that cached it
  sqlite3_bind_int64(st, 14, cache_id_);
  sqlite3_bind_int64(st, 15, body_disk_size);
  if (sqlite3_step(st) != SQLITE_DONE) {
    return StatementError("INSERT INTO entries", error);
  }
  const int64_t entry_id = sqlite3_last_insert_rowid(db_);
  if (!InsertHeader("request_headers", "X-Requested-With", "hostsim",
                    entry_id, error) ||
      !InsertHeader("response_headers", "Content-Type",
                    "application/octet-stream", entry_id, error) ||
      !InsertHeader("response_headers", "X-Hostsim-Put",
                    std::to_string(++puts_), entry_id, error)) {
    return false;
  }
  // A fetched response lists the URL(s) it came from.
  sqlite3_stmt* list = statements_->Get(
      "INSERT INTO response_url_list (url, entry_id) VALUES (?1, ?2)");
  if (list == nullptr) return StatementError("response_url_list", error);
  BindText(list, 1, url);
  sqlite3_bind_int64(list, 2, entry_id);
  return sqlite3_step(list) == SQLITE_DONE ||
         StatementError("response_url_list", error);
}

bool GeckoOrigin::InsertHeader(const char* table, const std::string& name,
                               const std::string& value, int64_t entry_id,
                               std::string* error) {
  sqlite3_stmt* st = statements_->Get(std::string("INSERT INTO ") + table +
                                      " (name, value, entry_id) "
                                      "VALUES (?1, ?2, ?3)");
  if (st == nullptr) return StatementError(table, error);
  BindText(st, 1, name);
  BindText(st, 2, value);
  sqlite3_bind_int64(st, 3, entry_id);
  return sqlite3_step(st) == SQLITE_DONE || StatementError(table, error);
}

void GeckoOrigin::RemoveBodies(const std::vector<Matched>& matches) {
  // Gecko deletes an orphaned body once no stream reads it; nothing here
  // reads bodies, so right after the commit.
  for (const Matched& m : matches) {
    for (const std::string& id : m.body_ids) {
      if (std::optional<std::string> path = bundle::MorguePathOfBodyId(id)) {
        std::error_code ignored;
        fs::remove(cache_dir_ / *path, ignored);
      }
    }
  }
}

bool GeckoOrigin::Put(const std::string& url, std::string_view body,
                      CacheOp* op, std::string* error) {
  const size_t query_at = url.find('?');
  const std::string_view url_no_query =
      std::string_view(url).substr(0, query_at);
  const std::string_view query = query_at == std::string::npos
                                     ? std::string_view()
                                     : std::string_view(url).substr(query_at);
  const std::optional<std::string> body_id = bundle::NewBodyId();
  if (!body_id) {
    *error = "no randomness for a body id";
    return false;
  }
  const fs::path final_path = cache_dir_ / *bundle::MorguePathOfBodyId(*body_id);
  fs::path tmp_path = final_path;
  tmp_path.replace_extension(".tmp");
  const std::string framed = SnappyFramed(body);
  std::error_code ec;
  fs::create_directories(final_path.parent_path(), ec);
  if (ec) {
    *error = final_path.parent_path().string() + ": " + ec.message();
    return false;
  }
  // The body is complete under its final name before any row names it.
  if (!WriteWhole(tmp_path, framed, error)) {
    fs::remove(tmp_path, ec);
    return false;
  }
  fs::rename(tmp_path, final_path, ec);
  if (ec) {
    *error = final_path.string() + ": " + ec.message();
    fs::remove(tmp_path, ec);
    return false;
  }

  const auto start = std::chrono::steady_clock::now();
  std::vector<Matched> replaced;
  int64_t security_info_id = 0;
  const bool ok = Exec("BEGIN IMMEDIATE", error) &&
                  FindMatches(url_no_query, query, &replaced, error) &&
                  RemoveEntries(replaced, error) &&
                  AddSecurityInfoRef(&security_info_id, error) &&
                  InsertEntry(url, url_no_query, query, *body_id,
                              static_cast<int64_t>(framed.size()),
                              security_info_id, error) &&
                  Exec("COMMIT", error);
  if (!ok) {
    Rollback();
    fs::remove(final_path, ec);
    return false;
  }
  op->transaction_us = ElapsedUs(start);
  RemoveBodies(replaced);
  op->kind = CacheOp::Kind::kPut;
  op->url = url;
  op->body_id = *body_id;
  op->body_disk_size = static_cast<int64_t>(framed.size());
  op->body_sha256 = bundle::Sha256Hex(framed);
  op->entries_removed = static_cast<int64_t>(replaced.size());
  return true;
}

bool GeckoOrigin::Delete(const std::string& url, CacheOp* op,
                         std::string* error) {
  const size_t query_at = url.find('?');
  const std::string_view url_no_query =
      std::string_view(url).substr(0, query_at);
  const std::string_view query = query_at == std::string::npos
                                     ? std::string_view()
                                     : std::string_view(url).substr(query_at);
  const auto start = std::chrono::steady_clock::now();
  std::vector<Matched> removed;
  const bool ok = Exec("BEGIN IMMEDIATE", error) &&
                  FindMatches(url_no_query, query, &removed, error) &&
                  RemoveEntries(removed, error) && Exec("COMMIT", error);
  if (!ok) {
    Rollback();
    return false;
  }
  op->transaction_us = ElapsedUs(start);
  RemoveBodies(removed);
  op->kind = CacheOp::Kind::kDelete;
  op->url = url;
  op->entries_removed = static_cast<int64_t>(removed.size());
  return true;
}

bool GeckoOrigin::Close(std::string* error) {
  if (db_ == nullptr) return true;
  bool ok = true;
  if (statements_) {
    // Before it lets the connection go.
    sqlite3_stmt* free_pages = statements_->Get("PRAGMA freelist_count");
    int64_t free_count = 0;
    if (free_pages != nullptr && sqlite3_step(free_pages) == SQLITE_ROW) {
      free_count = sqlite3_column_int64(free_pages, 0);
    }
    statements_->Clear();
    if (free_count > kMaxFreePages) ok = Exec("PRAGMA incremental_vacuum", error);
  }
  if (sqlite3_close(db_) != SQLITE_OK) {
    *error = std::string("close: ") + sqlite3_errmsg(db_);
    ok = false;
  }
  db_ = nullptr;
  std::error_code ignored;
  if (ok) fs::remove(cache_dir_ / "context_open.marker", ignored);
  return ok;
}

}  // namespace quiesce::hostsim
