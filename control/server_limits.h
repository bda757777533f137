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
  // A session that sends no request for this long ends, unless it watches
  // or waits for a job (empty lines and partial bytes are not requests).
  std::chrono::milliseconds idle_timeout{5 * 60 * 1000};
  // A session whose unsent output does not move for this long (the client
  // stopped reading) is dropped, watching or not.
  std::chrono::milliseconds write_stall{30 * 1000};
  // A request must arrive whole within this time from its first byte.
  std::chrono::milliseconds request_timeout{10 * 1000};
  // Unsent bytes a session may accumulate before it is dropped.
  size_t max_output = 4 * 1024 * 1024;
  // A watch adds events only while less than this is waiting to be sent:
  // a slow reader's backlog stays in the database's event ring, not here.
  size_t watch_low_water = 128 * 1024;
  size_t max_watches = 16;     // watch streams per session
  size_t max_pending_fds = 16; // received descriptors not yet claimed
  // Injection payloads (blob parameters and scripts read from the
  // client's descriptors) are read whole into the host's heap: sized for a
  // phone. One value at most 16 MiB (SQLite's own value-length limit on
  // quiesce's connection), one request at most 16 MiB, one client's
  // requests at once 16 MiB, all requests at once 32 MiB. Over a value or
  // request cap: bad_request; over the client or total cap: busy at once.
  size_t max_payload_value = 16u << 20;
  size_t max_payload_request = 16u << 20;
  size_t max_payload_client = 16u << 20;
  size_t max_payload_total = 32u << 20;
  // How long a session that is being closed may take to take its last
  // bytes.
  std::chrono::milliseconds close_linger{1000};
};

// The longest script "inject" takes inline ("sql"): below the line cap
// (kDefaultMaxLine, 64 KiB) with room for the request's other fields, so a
// client meets this cap and its own error before the line's. Larger
// scripts go by descriptor ("sql_fd").
inline constexpr size_t kMaxInlineSql = 60 * 1024;
static_assert(kMaxInlineSql + 4096 <= kDefaultMaxLine);

// Snapshots, holds and injections running at once, over all sessions.
inline constexpr size_t kMaxJobs = 8;

}  // namespace quiesce::control

#endif  // QUIESCE_CONTROL_SERVER_LIMITS_H_
