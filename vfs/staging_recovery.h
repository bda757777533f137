// At the host's open of an origin's caches.sqlite, what a `bundle inject`
// that died with the browser left in its morgue/ goes before Gecko sees it.
//
// A crash between the injection's renames into morgue/ and its commit
// leaves bodies no row references. At the next open after an unclean
// shutdown Gecko deletes such files while decreasing the origin's quota
// usage by bytes it never counted, which wraps the usage and breaks the
// session (docs/gecko.md, "Orphan bodies"). Gecko's cleanup runs on the
// connection whose open this precedes, so removing them here, before the
// base VFS opens the file, closes the gap that `quiescectl bundle recover`
// otherwise had to fill by hand.
//
// Cost to the host: one directory listing of <profile>/quiesce-staging per
// first open of a caches.sqlite (nothing when it does not exist); only
// when a dead injection's manifest names this cache directory, a read of
// the body ids its rows reference, on a read-only connection that never
// waits (busy timeout 0: a lock held elsewhere skips the recovery, which
// the next open or quiescectl command does instead).
//
// What it touches: the manifest is found from the host's own path, never a
// path a client names; the files it removes are
// <cache dir>/morgue/<n>/<id>.final for listed ids that no row references,
// the name built here from a validated body id.
#ifndef QUIESCE_VFS_STAGING_RECOVERY_H_
#define QUIESCE_VFS_STAGING_RECOVERY_H_

#include <string>

namespace quiesce {

class Context;

// Called by the shim's xOpen for a host's main database (not quiesce's
// own connection), before the base VFS opens it. Does nothing for a path
// that is not <...>/cache/caches.sqlite, or for one that a connection of
// the host has open (an injection of this host's may be running on it).
// Never throws; reports what it did to the host's SQLite log.
void RecoverStagingBeforeOpen(Context& context, const std::string& vfs_name,
                              const char* db_path);

}  // namespace quiesce

#endif  // QUIESCE_VFS_STAGING_RECOVERY_H_
