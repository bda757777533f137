// hold: a quiescent point of a database, leased to a client by the control
// server (control/lease.h), beside snapshot and inject. While it lasts no
// host transaction runs on the database, so a client may copy its files
// (the lengths below) or inject inside it.
//
// Normal locking: the gate drains every host transaction and checkpoint,
// and the files are stable as they are. locking_mode=EXCLUSIVE: the write
// gate; the database file is stable, and of the WAL only its committed
// prefix (host commits append past it), of the journal nothing.
#ifndef QUIESCE_VFS_HOLD_H_
#define QUIESCE_VFS_HOLD_H_

#include <cstdint>

#include "database.h"
#include "position.h"
#include "result.h"

namespace quiesce {

struct HoldPoint {
  uint64_t token = 0;  // the gate's: ReopenGate(token) ends the point
  uint64_t generation = 0;
  Position position;
  LockingMode locking_mode = LockingMode::kNormal;
  // What of each file a copy may read at the point; -1: there is no such
  // file. Exclusive locking: the WAL's committed prefix, no journal (0).
  int64_t db_bytes = -1;
  int64_t wal_bytes = -1;
  int64_t journal_bytes = -1;
};

// Closes the gate (waiting for the drain until drain_deadline) and names
// the point. On success the gate stays closed until ReopenGate(token) or
// closed_until, whichever comes first; on failure it is open again.
Result<HoldPoint> ReachHoldPoint(Database& db,
                                 Database::Clock::time_point drain_deadline,
                                 Database::Clock::time_point closed_until);

}  // namespace quiesce

#endif  // QUIESCE_VFS_HOLD_H_
