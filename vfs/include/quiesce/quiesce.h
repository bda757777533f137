/*
** quiesce: a SQLite VFS shim that lets another process take consistent
** snapshots of, and inject transactions into, databases that this process
** (the host) keeps open, without lock contention.
**
** This header does not include sqlite3.h: a host may use any SQLite it
** likes (Firefox ships its own as libmozsqlite3), and the shim reaches that
** SQLite only through symbols resolved at run time.
**
** Thread safety: quiesce_register, quiesce_attach and quiesce_shutdown may
** be called from any thread, but not concurrently with each other.
**
** COMPILING
**
** Build with Meson (README.md, docs/install.md) or install the Debian
** packages; a host then needs only this header and
**     cc host.c $(pkg-config --cflags --libs quiesce)
** libquiesce links no SQLite, no C++ exception escapes it, and it exports
** quiesce_register, quiesce_attach, quiesce_shutdown and
** sqlite3_quiesce_init only.
**
** LOADING
**
** Three ways, one shim:
**   - A host that links libquiesce calls quiesce_register before it opens
**     its databases (early registration: every file is tracked).
**   - A host already running calls quiesce_attach (directly, over JNI, or
**     through the preload's late mode, docs/gecko.md): files opened from
**     then on are tracked.
**   - Any SQLite program loads it as an extension:
**         sqlite3 app.db ".load libquiesce"
**     sqlite3_quiesce_init reads the QUIESCE_* environment (quiesce(7)).
**
** USING
**
** Open databases through the shim's VFS (by name, or as the default VFS),
** then, from another process, `quiescectl list`, `snapshot`, `hold`,
** `inject`, `watch`, `bundle` over the control socket (docs/protocol.md).
** `PRAGMA quiesce_status` shows a database's state from inside the host.
**
** LIMITATIONS
**
**   - At most 8 quiesce VFSes per process (quiesce_register names and
**     quiesce_attach wraps together); more are refused with SQLITE_FULL.
**   - Files opened before quiesce_attach are untracked, and snapshot, hold
**     and inject refuse them until the host reopens them.
**   - Injections are refused (`unsupported`) on a database in
**     locking_mode=EXCLUSIVE; snapshots and holds there close a write gate.
**   - Commits by another process are seen only when a connection in this
**     process next reads or writes the database, coalesced: one event may
**     stand for several.
**   - A host lock request never waits past max_stall_ms: one that would is
**     passed to the base VFS as if quiesce were not there, and counted as a
**     fault (`max_stall_reached`); leases and injections are bounded below
**     it so that this does not happen.
*/
#ifndef QUIESCE_QUIESCE_H
#define QUIESCE_QUIESCE_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Resolves a SQLite API symbol ("sqlite3_vfs_find", ...) to its address in
** the host's SQLite. Return NULL for a symbol that does not exist. */
typedef void *(*quiesce_resolver)(void *arg, const char *symbol);

typedef struct quiesce_config {
  /* sizeof(quiesce_config): lets the struct grow without breaking hosts
  ** built against an older header. Required. */
  size_t size;
  /* The VFS to wrap; NULL means the current default VFS. */
  const char *base_vfs;
  /* The name to register under; NULL means "quiesce". Passing the base's
  ** own name ("unix") replaces it for every layer above, and then the shim
  ** is always registered as the default, as SQLite's list requires. */
  const char *vfs_name;
  /* Non-zero: make the shim the default VFS. */
  int make_default;
  /* Control socket: a path, "@name" for a Linux abstract socket, "" for
  ** the default path ($XDG_RUNTIME_DIR/quiesce/<pid>.sock), or NULL for
  ** no control server. */
  const char *socket_path;
  /* Longest time a host lock request may wait at a closed gate, in ms.
  ** 0 means the default (5000). */
  unsigned max_stall_ms;
  /* Longest lease a client may hold on a quiescent point, in ms. 0 means
  ** the default; always capped below max_stall_ms. */
  unsigned lease_ms;
  /* Comma-separated uids allowed to connect; NULL means the host's uid. */
  const char *allow_uids;
  /* NULL or "": no database is writable by clients. "1": all are.
  ** Otherwise a glob matched against a database's canonical path. */
  const char *writable;
  /* Non-zero: injections may run DDL. */
  int allow_ddl;
  /* Symbol resolver for the host's SQLite; NULL means dlsym(RTLD_DEFAULT). */
  quiesce_resolver resolve;
  void *resolve_arg;
  /* Comma-separated SQL functions that injections may call beyond the
  ** built-in list (docs/protocol.md "What an injection may run"); NULL
  ** means none. Each must cost at most linear time in its arguments, or an
  ** injection could outlast its lease inside one call. */
  const char *inject_functions;
} quiesce_config;

/* Wraps the base VFS and registers the shim. Returns a SQLite result code
** (0 is SQLITE_OK). Registering the same name again is a no-op that returns
** SQLITE_OK. The first call that names a socket starts the control
** server. */
int quiesce_register(const quiesce_config *config);

/* What quiesce_attach did, filled by every call (the first and the no-op
** calls after it). */
typedef struct quiesce_attach_report {
  /* sizeof(quiesce_attach_report), set by the caller. Required. */
  size_t size;
  /* The result code of the attach that took effect (0: SQLITE_OK). */
  int result;
  /* Non-zero: an earlier call had attached; this one did nothing. */
  int already_attached;
  /* How many VFSes are wrapped in place, and their names, comma-separated
  ** (truncated to fit). */
  int vfs_count;
  char vfs_names[128];
  /* The file that defines the SQLite found ("" when it cannot be told). */
  char sqlite_library[512];
  /* The control socket's path ("" when no server runs). */
  char socket_path[256];
  /* Why an attach failed, or what it skipped; "" when all went well. */
  char message[512];
} quiesce_attach_report;

typedef struct quiesce_attach_config {
  /* sizeof(quiesce_attach_config). Required. */
  size_t size;
  /* The VFSes to wrap in place, a NULL-terminated array of names; NULL
  ** means every one of "unix", "unix-excl", "unix-none" and "unix-dotfile"
  ** that is registered. Gecko builds its layers over "unix" (Android) and
  ** "unix-excl" (desktop). */
  const char *const *vfs_names;
  /* A dlopen() handle of the library that defines the host's SQLite
  ** (libmozsqlite3.so on Linux; libnss3.so in Android builds of Gecko,
  ** which fold SQLite into NSS). NULL: the global symbol scope, then the
  ** loaded libmozsqlite3.so, libnss3.so or libsqlite3.so. Ignored when
  ** `resolve` is set. */
  void *sqlite_library;
  /* Symbol resolver for the host's SQLite; NULL: see sqlite_library. */
  quiesce_resolver resolve;
  void *resolve_arg;
  /* As in quiesce_config. */
  const char *socket_path;
  unsigned max_stall_ms;
  unsigned lease_ms;
  const char *allow_uids;
  const char *writable;
  int allow_ddl;
  /* Optional: filled in by the call. */
  quiesce_attach_report *report;
} quiesce_attach_config;

/* Attaches the shim to a SQLite that is already initialized and in use,
** with no rebuild of the host: finds that SQLite in the process (it links
** none of its own), wraps the named VFSes IN PLACE (each keeps its
** identity, its szOsFile and its other methods; its xOpen and xDelete lead
** to the shim from now on, so layers built over it before the attach, like
** Gecko's base-vfs and quotavfs, open every new file through the shim),
** and starts the control server when a socket is named.
**
** Files opened before the attach are not tracked and cannot be made safe:
** quiesce sees the process's descriptors on them, lists such databases as
** untracked and refuses snapshot, hold and inject on them ("opened before
** quiesce attached; it becomes available once the host reopens it") until
** every connection the host opened before has closed. Attach before the
** first page loads, or have the host reopen (reload) what it had open.
**
** NULL config: everything from the environment (QUIESCE_SOCKET and the
** rest, as the loadable extension reads it), SQLite found in the global
** symbol scope: one call from any host (a JVM, Python) attaches.
**
** Returns a SQLite result code (0 is SQLITE_OK). Idempotent: once an
** attach succeeded, later calls do nothing and report it (a failed attach
** may be tried again). Calling it in a process whose SQLite is not yet
** initialized initializes it (Gecko configures SQLite before its own
** initialization: attach only once Gecko runs). */
int quiesce_attach(const quiesce_attach_config *config);

/* Stops the control server (joining its thread and unlinking its socket).
** Registered VFSes stay registered: SQLite may still hold files open
** through them. */
void quiesce_shutdown(void);

#ifdef __cplusplus
}
#endif

#endif /* QUIESCE_QUIESCE_H */
