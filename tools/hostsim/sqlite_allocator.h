// SQLite's allocator for the host simulator: mimalloc, plugged in with
// sqlite3_config(SQLITE_CONFIG_MALLOC) before SQLite initializes, the way
// Gecko plugs in jemalloc. A tool may do this; host code (vfs/, control/)
// never replaces the host's allocator.
#ifndef QUIESCE_TOOLS_HOSTSIM_SQLITE_ALLOCATOR_H_
#define QUIESCE_TOOLS_HOSTSIM_SQLITE_ALLOCATOR_H_

namespace quiesce::hostsim {

// Must run before anything initializes SQLite (quiesce_register included).
// False when SQLite refuses, i.e. it was initialized already.
bool UseMimallocForSqlite();

}  // namespace quiesce::hostsim

#endif  // QUIESCE_TOOLS_HOSTSIM_SQLITE_ALLOCATOR_H_
