// quiesce's own connection to a database the host has open: opened for
// one operation (a snapshot, an injection) through the same shim VFS the
// host used, and closed when the operation ends, so it never outlives the
// host's use of the database. Its handles are marked `own`: they never
// wait at the gate, and host requests that conflict only with them wait
// for them instead of failing.
//
// It never checkpoints on close, keeps the WAL persistent, never
// auto-checkpoints (a passive checkpoint runs after an injection instead),
// and applies the host's semantic settings (foreign_keys). Its cost to the
// host's heap is bounded: no string or blob longer than kMaxValueBytes (so
// one function call cannot allocate a gigabyte or run for seconds), SQL
// text no longer either, temporary data in files.
//
// Thread safety: one thread at a time.
#ifndef QUIESCE_VFS_OWN_CONNECTION_H_
#define QUIESCE_VFS_OWN_CONNECTION_H_

#include <memory>
#include <string>

#include "database.h"
#include "result.h"
#include "sqlite_api.h"

namespace quiesce {

struct ShimFile;

class OwnConnection {
 public:
  // sqlite3_limit(SQLITE_LIMIT_LENGTH) and (SQL_LENGTH) on the connection:
  // the largest value, SQL text or row an injection can bind or build. A
  // payload value of the control channel's largest (16 MiB) fits in a row
  // with room for the row's other columns.
  static constexpr int kMaxValueBytes = 17 << 20;

  static Result<std::unique_ptr<OwnConnection>> Open(Database& db);
  ~OwnConnection();
  OwnConnection(const OwnConnection&) = delete;
  OwnConnection& operator=(const OwnConnection&) = delete;

  sqlite3* handle() const { return db_; }
  const SqliteApi& api() const { return api_; }

  // Runs SQL that returns no rows; errors come back as kSqlError (or
  // kBusy) with SQLite's message.
  Result<Ok> Exec(const char* sql);
  // Starts a read transaction (BEGIN and a read of the schema).
  Result<Ok> BeginRead();
  // Ends the open transaction, if any, undoing it. Nothing for a caller to
  // handle when it fails: SQLite has then rolled back on its own or will
  // at close; the failure goes to the host's SQLite log.
  void Rollback();
  // The shim's file object of the main database, and the WAL's base-VFS
  // file object (null until a read transaction opened the WAL).
  ShimFile* main_file() const;
  sqlite3_file* wal_file() const;

  Error SqlError(int rc, const std::string& what) const;

 private:
  OwnConnection(const SqliteApi& api, sqlite3* db) : api_(api), db_(db) {}

  const SqliteApi& api_;
  sqlite3* db_;
};

}  // namespace quiesce

#endif  // QUIESCE_VFS_OWN_CONNECTION_H_
