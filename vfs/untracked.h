// Database files this process has open that the shim does not track.
//
// A shim attached in place (quiesce_attach) sees only the files opened
// after the attach; connections opened before keep their files and locks
// out of its sight, and no gate can drain them. The same holds for a
// second SQLite in the process that opens a database the host has open.
// quiesce finds them by the process's descriptors (/proc/self/fd): every
// descriptor on a database's file, its -wal or its -journal that no file of
// the shim (nor quiesce's own reads through the base VFS) has held is
// someone else's, and snapshot, hold and inject are refused on that
// database.
//
// Which descriptor a shim file holds is read from the wrapped file: SQLite's
// unix VFS begins its file with its methods, its VFS, its inode and its
// descriptor (os_unix.c), and the VFS field must be the very VFS that
// opened it for the descriptor to be believed. A base VFS of another kind
// leaves the descriptor unknown: such a database cannot be vouched for.
//
// A descriptor that a shim file held stays known after its close while it
// stays open (SQLite's unix VFS parks the descriptor of a closed file while
// the process holds locks on the inode, and reuses it later).
//
// Exact for connections opened before an attach: their descriptors were
// open before any shim file existed. Best effort for a second SQLite that
// opens the database later: should the unix VFS close a parked descriptor
// unseen and that SQLite get the same number for the same database, it
// would be taken for the shim's.
//
// Cost: one load at each open, one fcntl at each close of a tracked file;
// the scans run only when a client asks (list, snapshot, hold, inject).
//
// Thread safety: every function may be called from any thread.
#ifndef QUIESCE_VFS_UNTRACKED_H_
#define QUIESCE_VFS_UNTRACKED_H_

#include <sqlite3.h>

#include <string>
#include <vector>

#include "database.h"
#include "result.h"

namespace quiesce {

class Context;

// What a client is told about a database it may not snapshot, hold or
// inject into.
extern const char kOpenedBeforeAttach[];

// The descriptor of a file opened by SQLite's unix VFS `vfs`, or -1 when
// `file` does not look like one.
int UnixFileDescriptor(const sqlite3_vfs* vfs, const sqlite3_file* file);

// A file of the shim (or quiesce's own read) opened on descriptor fd of
// the database main_id; fd -1: opened, descriptor unknown.
void NoteFdOpened(int fd, FileId main_id);
// That file closed (after the base VFS's xClose).
void NoteFdClosed(int fd);

// The process's descriptors on db's main file, -wal or -journal that no
// file of the shim holds, as "path (fd N)". Empty when there are none.
// *unknown is set when some file of the shim on db has a descriptor that
// could not be read: then nothing can be concluded.
std::vector<std::string> UntrackedDescriptors(const Database& db,
                                              bool* unknown);

// OK when every descriptor of the process on db's files belongs to the
// shim; else kUnsupported with kOpenedBeforeAttach and the files. A
// database whose descriptors cannot be told apart is refused after an
// attach and let through after a registration (where nothing opens before
// the shim).
Result<Ok> CheckFullyTracked(const Database& db, bool attached);

// A database file open in the process with descriptors that no file of
// the shim holds.
struct UntrackedDatabase {
  std::string path;                 // the main file, as the kernel names it
  std::vector<std::string> files;   // its files open untracked (basename)
  int descriptors = 0;
  bool partly_tracked = false;      // the shim also has it open
};

// Every such database, by scanning the process's descriptors: files named
// *-wal or *-journal, and files that begin with SQLite's header (read with
// pread on the descriptor itself: quiesce never opens nor closes them).
std::vector<UntrackedDatabase> ScanUntracked(Context& context);

}  // namespace quiesce

#endif  // QUIESCE_VFS_UNTRACKED_H_
