#include "staging_recovery.h"

#include <filesystem>
#include <set>
#include <string_view>

#include "context.h"
#include "gecko_body_id.h"
#include "inject_staging.h"
#include "shim_file.h"
#include "sqlite_api.h"

namespace quiesce {
namespace {

namespace fs = std::filesystem;

// Runs `sql` on `db` and hands each row's first column to `row`; the
// final result code.
template <typename Row>
int EachRow(const SqliteApi& api, sqlite3* db, const char* sql, Row row) {
  sqlite3_stmt* stmt = nullptr;
  int rc = api.prepare_v2(db, sql, -1, &stmt, nullptr);
  while (rc == SQLITE_OK || rc == SQLITE_ROW) {
    rc = api.step(stmt);
    if (rc == SQLITE_ROW) row(stmt);
  }
  api.finalize(stmt);
  return rc;
}

// The body ids rows reference, and the caches that no storage row names
// (an unpublished fill among them), read on a connection of quiesce's own
// (marked so by the thread flag: its open skips this recovery and never
// waits at the gate). false when they cannot be read now.
bool ReadRows(const SqliteApi& api, const std::string& vfs_name,
              const char* db_path, std::set<std::string>* ids,
              std::set<int64_t>* unpublished, std::string* error) {
  sqlite3* db = nullptr;
  SetOpeningOwnConnection(true);
  int rc = api.open_v2(db_path, &db,
                       SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX |
                           SQLITE_OPEN_PRIVATECACHE,
                       vfs_name.c_str());
  SetOpeningOwnConnection(false);
  if (rc == SQLITE_OK) {
    api.db_config(db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, nullptr);
    api.busy_timeout(db, 0);
    rc = EachRow(api, db,
                 "SELECT request_body_id FROM entries WHERE request_body_id "
                 "IS NOT NULL UNION SELECT response_body_id FROM entries "
                 "WHERE response_body_id IS NOT NULL",
                 [&](sqlite3_stmt* stmt) {
                   const auto* text = reinterpret_cast<const char*>(
                       api.column_text(stmt, 0));
                   if (text != nullptr && IsBodyId(text)) ids->emplace(text);
                 });
  }
  if (rc == SQLITE_DONE) {
    rc = EachRow(api, db,
                 "SELECT id FROM caches WHERE id NOT IN "
                 "(SELECT cache_id FROM storage)",
                 [&](sqlite3_stmt* stmt) {
                   unpublished->insert(api.column_int64(stmt, 0));
                 });
  }
  const bool ok = rc == SQLITE_DONE;
  if (!ok) *error = db != nullptr ? api.errmsg(db) : api.errstr(rc);
  api.close(db);
  return ok;
}

}  // namespace

void RecoverStagingBeforeOpen(Context& context, const std::string& vfs_name,
                              const char* db_path) {
  // Every other database returns here, before anything is allocated.
  if (!std::string_view(db_path).ends_with("/cache/caches.sqlite")) return;
  const SqliteApi& api = context.api();
  try {
    const fs::path cache_dir = fs::path(db_path).parent_path();
    // Open in this host already: an injection of its own may be running.
    if (context.FindByPath(db_path) != nullptr) return;
    if (!NeedsRecovery(cache_dir)) return;
    std::set<std::string> referenced;
    std::set<int64_t> unpublished;
    std::string error;
    if (!ReadRows(api, vfs_name, db_path, &referenced, &unpublished,
                  &error)) {
      api.log(SQLITE_WARNING,
              "quiesce: a dead bundle injection left bodies for %s; not "
              "removed now, its rows cannot be read: %s",
              cache_dir.c_str(), error.c_str());
      return;
    }
    const Recovery r =
        RecoverStaging(cache_dir, referenced, Readers::kNone, unpublished);
    api.log(SQLITE_NOTICE,
            "quiesce: before opening %s: %d staging director%s of dead "
            "bundle injections cleaned up, %d unreferenced bodies removed "
            "from morgue/, %d kept (rows reference them), %d left for the "
            "next bundle inject (rows of an unpublished cache)",
            db_path, r.directories,
            r.directories == 1 ? "y" : "ies", r.bodies_removed,
            r.bodies_kept, r.fills_waiting);
  } catch (...) {  // std::bad_alloc: nothing may cross into SQLite
    api.log(SQLITE_NOMEM, "quiesce: out of memory recovering staged bodies "
                          "for %s",
            db_path);
  }
}

}  // namespace quiesce
