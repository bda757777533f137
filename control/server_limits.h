// The control server's hard limits: everything a client can make the host
// hold is bounded by one of these.
#ifndef QUIESCE_CONTROL_SERVER_LIMITS_H_
#define QUIESCE_CONTROL_SERVER_LIMITS_H_

#include <chrono>
#include <cstddef>

#include "framing.h"

namespace quiesce::control {

struct ServerLimits {
  size_t max_line = kDefaultMaxLine;  // bytes in one request
  size_t max_connections = 64;        // sessions in total
  size_t max_per_uid = 32;            // sessions of one peer uid
  // A session that sends nothing for this long (and watches nothing) ends.
  std::chrono::milliseconds idle_timeout{5 * 60 * 1000};
  // A request must arrive whole within this time from its first byte.
  std::chrono::milliseconds request_timeout{10 * 1000};
  // Unsent bytes a session may accumulate before it is dropped.
  size_t max_output = 4 * 1024 * 1024;
  // A watch adds events only while less than this is waiting to be sent:
  // a slow reader's backlog stays in the database's event ring, not here.
  size_t watch_low_water = 128 * 1024;
  size_t max_watches = 16;     // watch streams per session
  size_t max_pending_fds = 16; // received descriptors not yet claimed
  // How long a session that is being closed may take to take its last
  // bytes.
  std::chrono::milliseconds close_linger{1000};
};

// Snapshots, holds and injections running at once, over all sessions.
inline constexpr size_t kMaxJobs = 8;

}  // namespace quiesce::control

#endif  // QUIESCE_CONTROL_SERVER_LIMITS_H_
