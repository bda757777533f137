// Which SQLite library a call to sqlite3_initialize is meant for.
//
// The preload's sqlite3_initialize captures every call of that name in the
// process: the host's (libxul, with a versioned reference that an
// unversioned definition satisfies), the host SQLite's own calls through its
// PLT, and those of any other SQLite library that a program inheriting
// LD_PRELOAD loads (Debian's libsqlite3 also calls itself through its PLT).
// Each must reach the definition its caller's own lookup would have found
// without the preload: the caller's object first, then its dependencies
// (a SQLite library calling itself gets its own; a module loaded with
// RTLD_LOCAL gets the SQLite it depends on), and for a caller whose
// dependencies define none, the global scope after the preload. The host
// SQLite is the one dlsym(RTLD_NEXT) finds after the preload: only its
// calls install the shim, and the shim's function table binds to it.
//
// Thread safety: all functions may be called from any thread. Nothing here
// takes a lock, so a fork at any moment leaves a usable state behind.
#ifndef QUIESCE_TOOLS_PRELOAD_SQLITE_OBJECTS_H_
#define QUIESCE_TOOLS_PRELOAD_SQLITE_OBJECTS_H_

namespace quiesce::preload {

using InitializeFn = int (*)();

struct InitializeTarget {
  InitializeFn initialize = nullptr;  // null: no SQLite found at all
  bool is_host = false;               // the host SQLite, which the shim wraps
};

// The sqlite3_initialize that a call from return address `caller` means.
InitializeTarget TargetFor(const void* caller);

// The host SQLite's definition of `symbol`, or null: the resolver of the
// shim's function table, so the table binds to the same library that the
// host calls (never to a second SQLite).
void* HostSymbol(void* unused, const char* symbol);

}  // namespace quiesce::preload

#endif  // QUIESCE_TOOLS_PRELOAD_SQLITE_OBJECTS_H_
