#include "own_connection.h"

#include "context.h"
#include "shim_file.h"

namespace quiesce {

Result<std::unique_ptr<OwnConnection>> OwnConnection::Open(Database& db) {
  const SqliteApi& api = db.context()->api();
  sqlite3* handle = nullptr;
  SetOpeningOwnConnection(true);
  const int rc = api.open_v2(db.path().c_str(), &handle,
                             SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX |
                                 SQLITE_OPEN_URI,
                             db.vfs_name().c_str());
  SetOpeningOwnConnection(false);
  std::unique_ptr<OwnConnection> own(new OwnConnection(api, handle));
  if (rc != SQLITE_OK) {
    return Error{ErrorCode::kIoError,
                 "cannot open " + db.path() + ": " +
                     (handle ? api.errmsg(handle) : api.errstr(rc))};
  }
  api.extended_result_codes(handle, 1);
  // Only other processes can keep it waiting (the host's handles wait for
  // it instead): short waits, and the callers retry until their deadline.
  api.busy_timeout(handle, 20);
  int persist = 1;
  api.file_control(handle, "main", SQLITE_FCNTL_PERSIST_WAL, &persist);
  api.db_config(handle, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, nullptr);
  api.db_config(handle, SQLITE_DBCONFIG_ENABLE_LOAD_EXTENSION, 0, nullptr);
  api.limit(handle, SQLITE_LIMIT_LENGTH, kMaxValueBytes);
  api.limit(handle, SQLITE_LIMIT_SQL_LENGTH, kMaxValueBytes);
  // Temporary tables and indexes in files: a host built with
  // SQLITE_TEMP_STORE=2 would keep them in its heap. (Nothing here may read
  // the schema, which would wait for a host writer's lock.)
  const std::string settings =
      std::string("PRAGMA wal_autocheckpoint=0; PRAGMA temp_store=FILE; "
                  "PRAGMA foreign_keys=") +
      (db.host_foreign_keys() ? "ON" : "OFF");
  if (auto r = own->Exec(settings.c_str()); !r.ok()) return r.error();
  return own;
}

OwnConnection::~OwnConnection() {
  if (db_ != nullptr) api_.close(db_);
}

Error OwnConnection::SqlError(int rc, const std::string& what) const {
  const int primary = rc & 0xff;
  const ErrorCode code =
      primary == SQLITE_BUSY || primary == SQLITE_LOCKED ? ErrorCode::kBusy
      : primary == SQLITE_IOERR || primary == SQLITE_FULL ||
              primary == SQLITE_CANTOPEN
          ? ErrorCode::kIoError
          : ErrorCode::kSqlError;
  return Error{code, what + ": " + api_.errmsg(db_)};
}

Result<Ok> OwnConnection::Exec(const char* sql) {
  const int rc = api_.exec(db_, sql, nullptr, nullptr, nullptr);
  if (rc != SQLITE_OK) return SqlError(rc, sql);
  return Ok{};
}

Result<Ok> OwnConnection::BeginRead() {
  if (auto r = Exec("BEGIN"); !r.ok()) return r;
  sqlite3_stmt* stmt = nullptr;
  int rc = api_.prepare_v2(db_, "SELECT count(*) FROM sqlite_schema", -1,
                           &stmt, nullptr);
  if (rc == SQLITE_OK) rc = api_.step(stmt);
  api_.finalize(stmt);
  if (rc != SQLITE_ROW) {
    Error e = SqlError(rc, "starting a read transaction");
    Rollback();
    return e;
  }
  return Ok{};
}

void OwnConnection::Rollback() {
  if (api_.get_autocommit(db_)) return;  // no transaction is open
  if (auto r = Exec("ROLLBACK"); !r.ok()) {
    api_.log(SQLITE_WARNING, "quiesce: %s", r.error().message.c_str());
  }
}

ShimFile* OwnConnection::main_file() const {
  sqlite3_file* file = nullptr;
  api_.file_control(db_, "main", SQLITE_FCNTL_FILE_POINTER, &file);
  return ShimFileOf(file);  // registered or attached
}

sqlite3_file* OwnConnection::wal_file() const {
  sqlite3_file* file = nullptr;
  api_.file_control(db_, "main", SQLITE_FCNTL_JOURNAL_POINTER, &file);
  if (file == nullptr || file->pMethods == nullptr) return nullptr;
  return ShimFileOf(file)->real();
}

}  // namespace quiesce
