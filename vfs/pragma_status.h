// PRAGMA quiesce_status: the shim's state of a database, for a user of the
// sqlite3 shell or any connection, through SQLITE_FCNTL_PRAGMA.
//
//   PRAGMA quiesce_status;          -- key=value lines
//   PRAGMA quiesce_status = text;   -- the same
//   PRAGMA quiesce_status = json;   -- one JSON object
//
// The keys are those of the control channel's `status` (docs/protocol.md):
// db, path, journal_mode, locking_mode, page_size, db_pages, db_bytes,
// generation, position.*, last_commit_us, handles, counters.*, gate.*.
// Host code: formatted by hand (no JSON library in the host).
#ifndef QUIESCE_VFS_PRAGMA_STATUS_H_
#define QUIESCE_VFS_PRAGMA_STATUS_H_

#include <string>
#include <string_view>

#include "database.h"

namespace quiesce {

struct SqliteApi;

enum class StatusFormat { kText, kJson };

// The database's state as key=value lines (nested keys dotted:
// "position.mx_frame=12"), each ending in '\n'.
std::string FormatStatusText(const DatabaseInfo& info);
// The same as one JSON object on one line; strings escaped, invalid UTF-8
// replaced by U+FFFD.
std::string FormatStatusJson(const DatabaseInfo& info);

// True when `name` is this pragma's name (case-insensitive).
bool IsStatusPragma(const char* name);

// Answers SQLITE_FCNTL_PRAGMA for quiesce_status on a main-database file:
// args as SQLite passes them (args[0] receives the result or the error, in
// memory from api.mprintf). Returns SQLITE_OK, SQLITE_ERROR for an unknown
// argument, or SQLITE_NOMEM. Never throws.
int AnswerStatusPragma(Database& db, const SqliteApi& api,
                       char** args) noexcept;

}  // namespace quiesce

#endif  // QUIESCE_VFS_PRAGMA_STATUS_H_
