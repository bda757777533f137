// Installing the shim in the host SQLite, once per process: under "unix"
// (the default), "unix-excl", "unix-none" and "unix-dotfile", each wrapping
// the original of the same name, configured by quiesce's environment table
// (QUIESCE_SOCKET, ...). Content processes get nothing (process_role.h).
//
// QUIESCE_PRELOAD_EXCL_OVER_UNIX=1 (test-only) registers "unix-excl" over
// the real "unix" instead: Gecko's cache databases, which desktop Firefox
// always opens through unix-excl, then take Android's path (a shared-memory
// wal-index in a -shm file, POSIX locks per lock byte).
//
// Late mode (QUIESCE_PRELOAD_ATTACH_FIFO=<path>): nothing is registered at
// SQLite's initialization; the parent process makes a FIFO at <path> and a
// thread waits on it. The first line written to it (`echo >path`) makes
// that thread call quiesce_attach, as a GeckoView app would once Gecko runs
// and pages are open: "unix", "unix-excl", "unix-none" and "unix-dotfile"
// are wrapped in place and the control server starts. The FIFO is removed
// and <path>.done says how it went: "0 <vfs names> <socket>", or the
// result code and why. Files open before that moment stay untracked.
//
// Thread safety: may be called from any thread; one call installs, the
// others wait for it (registration does no I/O beyond starting the control
// server). Fork-safe: a fork waits for an installation in progress, so the
// child never inherits a half-held lock.
#ifndef QUIESCE_TOOLS_PRELOAD_INSTALL_H_
#define QUIESCE_TOOLS_PRELOAD_INSTALL_H_

namespace quiesce::preload {

// Whether installation has been done (or decided against) in this process.
bool Installed();

// Installs the shim unless already done. Call after a successful
// sqlite3_initialize of the host SQLite; while that SQLite's
// initialization is still running further up the stack (its VFSes not all
// registered yet), does nothing and a later call tries again. Never
// throws; failures go to the host's sqlite3_log and to stderr, and leave
// the host SQLite as it was.
void InstallOnce();

}  // namespace quiesce::preload

#endif  // QUIESCE_TOOLS_PRELOAD_INSTALL_H_
