// The operations that reach a quiescent point or a consistent copy of a
// database: snapshot, hold, release, inject (see docs/protocol.md). Their
// work runs on jobs, off the server thread.
#ifndef QUIESCE_CONTROL_QUIESCE_OPS_H_
#define QUIESCE_CONTROL_QUIESCE_OPS_H_

#include <vector>

#include "handlers.h"

namespace quiesce::control {

const std::vector<Operation>& QuiesceOperations();

}  // namespace quiesce::control

#endif  // QUIESCE_CONTROL_QUIESCE_OPS_H_
