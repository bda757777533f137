// A fault-injecting VFS for the VFS fuzzer: a pass-through over "unix" that,
// when armed, makes one kind of file operation fail: I/O errors on reads,
// writes, syncs or truncates, a full disk on writes, or short reads (the
// tail of the buffer zero-filled and SQLITE_IOERR_SHORT_READ returned, as
// "unix" does at the end of a file).
//
// The quiesce shim is registered over it, so faults reach the host's
// connections and quiesce's own connection alike; a connection opened with
// plain "unix" bypasses both.
//
// Thread safety: none. The fuzzer is single-threaded; so is this.
#ifndef QUIESCE_TESTS_FUZZ_FAULT_VFS_H_
#define QUIESCE_TESTS_FUZZ_FAULT_VFS_H_

#include <cstdint>

namespace quiesce::fuzz {

inline constexpr const char* kFaultVfsName = "fuzz-fault";

enum class Fault : uint8_t {
  kNone,
  kReadError,   // xRead: SQLITE_IOERR_READ
  kShortRead,   // xRead: half the bytes, the rest zeros, IOERR_SHORT_READ
  kWriteError,  // xWrite: SQLITE_IOERR_WRITE
  kDiskFull,    // xWrite: SQLITE_FULL
  kSyncError,   // xSync: SQLITE_IOERR_FSYNC
  kTruncateError,  // xTruncate: SQLITE_IOERR_TRUNCATE
};

// Registers the fault VFS over "unix" (once per process). Returns a SQLite
// result code.
int RegisterFaultVfs();

// Arms `fault`: the after-th matching call from now on fails (0: the next
// one), and with `persistent` every matching call after it too, until
// Disarm(). Only files the fault VFS opened are affected.
void Arm(Fault fault, uint32_t after, bool persistent);
void Disarm();

// How many calls failed since the last ResetFired().
uint32_t Fired();
void ResetFired();

}  // namespace quiesce::fuzz

#endif  // QUIESCE_TESTS_FUZZ_FAULT_VFS_H_
