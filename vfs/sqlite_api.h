// The one table through which host code reaches SQLite.
//
// The shim lives inside a host that has its own SQLite (Firefox's
// libmozsqlite3, folded into libnss3 on Android). Linking a second SQLite
// into that process would capture the host's own calls, so host code never
// calls sqlite3_* directly: it calls through this table, filled from the
// host's SQLite at run time. The table holds only functions that Firefox's
// libmozsqlite3 exports (tests/library_test.cc's
// FirefoxSqliteExportsTheWholeFunctionTable checks that with `nm -D`), so
// no sqlite3_wal_checkpoint_v2, sqlite3_serialize, ...: use PRAGMAs
// instead.
#ifndef QUIESCE_VFS_SQLITE_API_H_
#define QUIESCE_VFS_SQLITE_API_H_

// SQLITE_CORE keeps sqlite3ext.h from redefining sqlite3_* as macros over
// a global routine table: only the sqlite3_api_routines type is wanted.
#ifndef SQLITE_CORE
#define SQLITE_CORE 1
#endif
#include <sqlite3.h>
#include <sqlite3ext.h>

#include <string>
#include <vector>

#include "quiesce/quiesce.h"
#include "result.h"

namespace quiesce {

// X(name): the function sqlite3_<name>, which is also the member <name> of
// sqlite3_api_routines.
#define QUIESCE_SQLITE_FUNCTIONS(X) \
  X(libversion)                     \
  X(log)                            \
  X(vfs_find)                       \
  X(vfs_register)                   \
  X(vfs_unregister)                 \
  X(open_v2)                        \
  X(close)                          \
  X(exec)                           \
  X(prepare_v2)                     \
  X(step)                           \
  X(reset)                          \
  X(finalize)                       \
  X(clear_bindings)                 \
  X(bind_blob)                      \
  X(bind_int64)                     \
  X(bind_null)                      \
  X(bind_text)                      \
  X(bind_parameter_count)           \
  X(bind_parameter_name)            \
  X(column_count)                   \
  X(column_type)                    \
  X(column_int64)                   \
  X(column_text)                    \
  X(column_blob)                    \
  X(column_bytes)                   \
  X(changes)                        \
  X(last_insert_rowid)              \
  X(errmsg)                         \
  X(extended_errcode)               \
  X(extended_result_codes)          \
  X(errstr)                         \
  X(file_control)                   \
  X(get_autocommit)                 \
  X(set_authorizer)                 \
  X(progress_handler)               \
  X(busy_timeout)                   \
  X(limit)                          \
  X(db_config)                      \
  X(free)                           \
  X(mprintf)                        \
  X(uri_parameter)

struct SqliteApi {
// NOLINTNEXTLINE(bugprone-macro-parentheses): name is pasted and declared
#define QUIESCE_API_MEMBER(name) decltype(&::sqlite3_##name) name = nullptr;
  QUIESCE_SQLITE_FUNCTIONS(QUIESCE_API_MEMBER)
#undef QUIESCE_API_MEMBER
};

// The table, through resolve (dlsym(RTLD_DEFAULT) when resolve is null);
// kNotFound naming every missing symbol when the library lacks some.
Result<SqliteApi> LoadSqliteApi(quiesce_resolver resolve, void* arg);

// Fills *api from a loadable extension's routine table.
void LoadSqliteApiFromExtension(const sqlite3_api_routines* routines,
                                SqliteApi* api);

// "sqlite3_initialize", ...: every symbol the table needs, for tests that
// compare it with what a SQLite library exports.
std::vector<std::string> SqliteApiSymbols();

}  // namespace quiesce

#endif  // QUIESCE_VFS_SQLITE_API_H_
