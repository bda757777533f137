// The JSON shapes of the shim's state in replies and events: one place, so
// that list, status and watch describe a database the same way, and
// docs/protocol.md can point here.
#ifndef QUIESCE_CONTROL_DESCRIBE_H_
#define QUIESCE_CONTROL_DESCRIBE_H_

#include <cstdint>

#include "codec.h"
#include "database.h"
#include "hold.h"
#include "position.h"

namespace quiesce::control {

// {"salt1":..,"salt2":..,"mx_frame":..} in WAL mode, else
// {"change_counter":..}.
json DescribePosition(const Position& position);

// One row of "list": identity, modes, sizes, generation, position, last
// commit time and the number of open handles.
json DescribeSummary(const DatabaseInfo& info);

// "status": the summary plus counters and every handle's locks.
json DescribeStatus(const DatabaseInfo& info);

// hold's reply: generation, position, locking_mode and the files' lengths
// a copy may read ({"db":..,"wal":..,"journal":..}, -1 for none).
json DescribeHold(const HoldPoint& hold);

// The fields of a "commit" event of database `db_id` (without id/event).
json DescribeEvent(uint64_t db_id, const CommitEvent& event);

}  // namespace quiesce::control

#endif  // QUIESCE_CONTROL_DESCRIBE_H_
