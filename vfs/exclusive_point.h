// A consistent point of a database the host opened with
// locking_mode=EXCLUSIVE, where no second connection can read it: the write
// gate closes at a commit boundary, and the committed state is named in
// files quiesce opens itself through the base VFS.
//
// Rollback journal: the database file alone is the state; the gate drains
// a transaction that has written it and holds back every write to it.
// WAL: the database file plus the WAL cut at the last commit; the gate holds
// back checkpoints (writes to the database file) and anything that would
// overwrite the WAL's committed prefix, while host commits append frames
// past it and go on. The cut is the commit the shim saw complete last, or,
// when the host has not committed since it opened the database, the last
// commit its own recovery found (the WAL's checksum chain, read the same
// way).
#ifndef QUIESCE_VFS_EXCLUSIVE_POINT_H_
#define QUIESCE_VFS_EXCLUSIVE_POINT_H_

#include <chrono>
#include <cstdint>

#include "base_file.h"
#include "database.h"
#include "result.h"

namespace quiesce {

struct ExclusivePoint {
  uint64_t token = 0;      // the gate's: ReopenGate(token) ends the point
  PinnedPoint point;       // the commit, its size and page size
  uint32_t wal_cut = 0;    // committed WAL frames in the state (0: none)
  int64_t db_bytes = 0;    // the database file's length
  int64_t wal_bytes = 0;   // the WAL's committed prefix (0: not needed)
  BaseFile main;           // the database file
  BaseFile wal;            // the WAL, open when wal_cut > 0
};

// Closes the write gate (waiting for the drain until drain_deadline), opens
// the files and pins the committed state. On success the gate stays closed
// until ReopenGate(token) or closed_until, whichever comes first; on
// failure it is open again.
Result<ExclusivePoint> ReachExclusivePoint(
    Database& db, std::chrono::steady_clock::time_point drain_deadline,
    std::chrono::steady_clock::time_point closed_until);

}  // namespace quiesce

#endif  // QUIESCE_VFS_EXCLUSIVE_POINT_H_
