#include "cache_schema.h"

#include <sqlite3.h>

#include <string>

namespace quiesce::hostsim {

namespace {

// dom/cache/DBSchema.cpp: 4 KiB pages, the file grown 32 KiB at a time,
// a checkpoint every 512 KiB of WAL.
constexpr int kPageSize = 4096;
constexpr int kGrowthSize = 32 * 1024;
constexpr int kWalAutoCheckpointPages = 512 * 1024 / kPageSize;
// Gecko builds SQLite with SQLITE_DEFAULT_JOURNAL_SIZE_LIMIT 1.5 MiB; a
// stock SQLite has no limit, so the simulator sets it.
constexpr int kJournalSizeLimit = 1536 * 1024;

// As `sqlite3 caches.sqlite .schema` prints Firefox ESR 153's, in creation
// order (sqlite_sequence comes with AUTOINCREMENT).
constexpr const char* kSchema[] = {
    "CREATE TABLE caches (id INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT )",
    "CREATE TABLE security_info (id INTEGER NOT NULL PRIMARY KEY, hash BLOB "
    "NOT NULL, data BLOB NOT NULL, refcount INTEGER NOT NULL)",
    "CREATE INDEX security_info_hash_index ON security_info (hash)",
    "CREATE TABLE entries (id INTEGER NOT NULL PRIMARY KEY, request_method "
    "TEXT NOT NULL, request_url_no_query TEXT NOT NULL, "
    "request_url_no_query_hash BLOB NOT NULL, request_url_query TEXT NOT "
    "NULL, request_url_query_hash BLOB NOT NULL, request_referrer TEXT NOT "
    "NULL, request_headers_guard INTEGER NOT NULL, request_mode INTEGER NOT "
    "NULL, request_credentials INTEGER NOT NULL, request_contentpolicytype "
    "INTEGER NOT NULL, request_cache INTEGER NOT NULL, request_body_id TEXT "
    "NULL, response_type INTEGER NOT NULL, response_status INTEGER NOT NULL, "
    "response_status_text TEXT NOT NULL, response_headers_guard INTEGER NOT "
    "NULL, response_body_id TEXT NULL, response_security_info_id INTEGER "
    "NULL REFERENCES security_info(id), response_principal_info TEXT NOT "
    "NULL, cache_id INTEGER NOT NULL REFERENCES caches(id) ON DELETE "
    "CASCADE, request_redirect INTEGER NOT NULL, request_referrer_policy "
    "INTEGER NOT NULL, request_integrity TEXT NOT NULL, request_url_fragment "
    "TEXT NOT NULL, response_padding_size INTEGER NULL, "
    "request_body_disk_size INTEGER NULL, response_body_disk_size INTEGER "
    "NULL, response_credentials INTEGER NOT NULL )",
    "CREATE INDEX entries_request_match_index ON entries (cache_id, "
    "request_url_no_query_hash, request_url_query_hash)",
    "CREATE TABLE request_headers (name TEXT NOT NULL, value TEXT NOT NULL, "
    "entry_id INTEGER NOT NULL REFERENCES entries(id) ON DELETE CASCADE)",
    "CREATE TABLE response_headers (name TEXT NOT NULL, value TEXT NOT NULL, "
    "entry_id INTEGER NOT NULL REFERENCES entries(id) ON DELETE CASCADE)",
    "CREATE INDEX response_headers_name_index ON response_headers (name)",
    "CREATE INDEX response_headers_entry_id_index ON response_headers "
    "(entry_id, name)",
    "CREATE TABLE response_url_list (url TEXT NOT NULL, entry_id INTEGER NOT "
    "NULL REFERENCES entries(id) ON DELETE CASCADE)",
    "CREATE TABLE storage (namespace INTEGER NOT NULL, key BLOB NULL, "
    "cache_id INTEGER NOT NULL REFERENCES caches(id), PRIMARY KEY(namespace, "
    "key) )",
    "CREATE TABLE usage_info (id INTEGER NOT NULL PRIMARY KEY, "
    "total_disk_usage INTEGER NOT NULL )",
    "CREATE TRIGGER entries_insert_trigger AFTER INSERT ON entries FOR EACH "
    "ROW BEGIN UPDATE usage_info SET total_disk_usage = total_disk_usage + "
    "ifnull(NEW.request_body_disk_size, 0) + "
    "ifnull(NEW.response_body_disk_size, 0) WHERE usage_info.id = 1; END",
    "CREATE TRIGGER entries_update_trigger AFTER UPDATE ON entries FOR EACH "
    "ROW BEGIN UPDATE usage_info SET total_disk_usage = total_disk_usage - "
    "ifnull(OLD.request_body_disk_size, 0) + "
    "ifnull(NEW.request_body_disk_size, 0) - "
    "ifnull(OLD.response_body_disk_size, 0) + "
    "ifnull(NEW.response_body_disk_size, 0) WHERE usage_info.id = 1; END",
    "CREATE TRIGGER entries_delete_trigger AFTER DELETE ON entries FOR EACH "
    "ROW BEGIN UPDATE usage_info SET total_disk_usage = total_disk_usage - "
    "ifnull(OLD.request_body_disk_size, 0) - "
    "ifnull(OLD.response_body_disk_size, 0) WHERE usage_info.id = 1; END",
    "INSERT INTO usage_info VALUES (1, 0)",
};

bool Exec(sqlite3* db, const std::string& sql, std::string* error) {
  char* message = nullptr;
  if (sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &message) ==
      SQLITE_OK) {
    return true;
  }
  *error = sql + ": " + (message ? message : sqlite3_errmsg(db));
  sqlite3_free(message);
  return false;
}

// The first column of a one-row statement, as text.
bool QueryText(sqlite3* db, const char* sql, std::string* value,
               std::string* error) {
  sqlite3_stmt* stmt = nullptr;
  bool ok = sqlite3_prepare_v2(db, sql, -1, &stmt, nullptr) == SQLITE_OK &&
            sqlite3_step(stmt) == SQLITE_ROW;
  if (ok) {
    const unsigned char* text = sqlite3_column_text(stmt, 0);
    *value = text ? reinterpret_cast<const char*>(text) : "";
  } else {
    *error = std::string(sql) + ": " + sqlite3_errmsg(db);
  }
  sqlite3_finalize(stmt);
  return ok;
}

}  // namespace

bool ConfigureCacheConnection(sqlite3* db, std::string* error) {
  const std::string pragmas =
      "PRAGMA page_size = " + std::to_string(kPageSize) +
      "; PRAGMA auto_vacuum = INCREMENTAL; PRAGMA foreign_keys = ON;";
  if (!Exec(db, pragmas, error)) return false;
  int chunk = kGrowthSize;
  if (sqlite3_file_control(db, "main", SQLITE_FCNTL_CHUNK_SIZE, &chunk) !=
      SQLITE_OK) {
    *error = std::string("SQLITE_FCNTL_CHUNK_SIZE: ") + sqlite3_errmsg(db);
    return false;
  }
  // The WAL outlives the connection (truncated to 0 bytes at close), as a
  // clean Firefox profile shows it.
  int persist = 1;
  if (sqlite3_file_control(db, "main", SQLITE_FCNTL_PERSIST_WAL, &persist) !=
      SQLITE_OK) {
    *error = std::string("SQLITE_FCNTL_PERSIST_WAL: ") + sqlite3_errmsg(db);
    return false;
  }
  if (!Exec(db, "PRAGMA wal_autocheckpoint = " +
                    std::to_string(kWalAutoCheckpointPages),
            error)) {
    return false;
  }
  std::string mode;
  if (!QueryText(db, "PRAGMA journal_mode = WAL", &mode, error)) return false;
  if (mode != "wal") {
    *error = "journal_mode WAL refused: " + mode;
    return false;
  }
  return Exec(db, "PRAGMA synchronous = NORMAL; PRAGMA journal_size_limit = " +
                      std::to_string(kJournalSizeLimit),
              error);
}

bool CreateOrCheckCacheSchema(sqlite3* db, std::string* error) {
  std::string version;
  if (!QueryText(db, "PRAGMA user_version", &version, error)) return false;
  if (version == std::to_string(kCacheSchemaVersion)) return true;
  if (version != "0") {
    *error = "caches.sqlite has schema version " + version + ", not " +
             std::to_string(kCacheSchemaVersion);
    return false;
  }
  if (!Exec(db, "BEGIN IMMEDIATE", error)) return false;
  for (const char* statement : kSchema) {
    if (!Exec(db, statement, error)) {
      sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
      return false;
    }
  }
  if (!Exec(db, "PRAGMA user_version = " + std::to_string(kCacheSchemaVersion),
            error) ||
      !Exec(db, "COMMIT", error)) {
    sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
    return false;
  }
  return true;
}

}  // namespace quiesce::hostsim
