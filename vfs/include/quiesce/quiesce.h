/*
** quiesce: a SQLite VFS shim that lets another process take consistent
** snapshots of, and inject transactions into, databases that this process
** (the host) keeps open, without lock contention.
**
** This header does not include sqlite3.h: a host may use any SQLite it
** likes (Firefox ships its own as libmozsqlite3), and the shim reaches that
** SQLite only through symbols resolved at run time.
**
** Thread safety: quiesce_register and quiesce_shutdown may be called from
** any thread, but not concurrently with each other.
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

/* Stops the control server (joining its thread and unlinking its socket).
** Registered VFSes stay registered: SQLite may still hold files open
** through them. */
void quiesce_shutdown(void);

#ifdef __cplusplus
}
#endif

#endif /* QUIESCE_QUIESCE_H */
