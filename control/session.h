// One client connection of the control server: its socket, its buffers,
// its watches, and what must happen when it goes away.
//
// Thread safety: a session belongs to the server thread; nothing else
// touches it. Lifetime: created at accept, destroyed when the connection
// ends for any reason; the destructor runs the disconnect hooks (where a
// lease or other per-session resource is given back) and closes the socket
// and every descriptor the client sent.
#ifndef QUIESCE_CONTROL_SESSION_H_
#define QUIESCE_CONTROL_SESSION_H_

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <vector>

#include "access.h"
#include "database.h"
#include "framing.h"
#include "lease.h"
#include "unique_fd.h"

namespace quiesce::control {

using Clock = std::chrono::steady_clock;

// A descriptor the client sent, not yet handed to a request. The kernel
// delivers SCM_RIGHTS with the bytes of the sendmsg that carried them and
// ends that read there: the descriptors belong to a line that starts at or
// after read_start and before read_end (offsets in the session's stream).
struct PendingFd {
  UniqueFd fd;
  uint64_t read_start = 0;
  uint64_t read_end = 0;
};

// Where a watch stands in one database's event ring. Holding the
// database lets the stream drain events committed just before the host
// closed it.
struct WatchCursor {
  std::shared_ptr<Database> db;
  uint64_t seq = 0;  // last event sent
};

// A "watch" request's stream of commit events.
struct Watch {
  int64_t request_id = 0;
  std::optional<uint64_t> db;               // nullopt: every database
  std::map<uint64_t, WatchCursor> cursors;  // by db id
};

class Session {
 public:
  Session(uint64_t id, UniqueFd fd, const PeerCreds& peer, size_t max_line,
          Clock::time_point now)
      : in(max_line), last_request(now), last_output_progress(now), id_(id), fd_(std::move(fd)),
        peer_(peer) {}
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  uint64_t id() const { return id_; }
  int fd() const { return fd_.get(); }
  const PeerCreds& peer() const { return peer_; }

  // Runs `hook` when the session ends, however it ends. Hooks run in the
  // order they were added, on the server thread, and must not throw far:
  // whatever they throw is swallowed.
  void OnDisconnect(std::function<void()> hook) {
    hooks_.push_back(std::move(hook));
  }

  // Drops the leases whose hold job is over (failed, revoked, released);
  // remembers the revoked ones' ids for a late release.
  void PruneLeases();

  LineBuffer in;                 // bytes received, split into requests
  // Descriptors received, not yet claimed, each with where it arrived.
  std::deque<PendingFd> fds_in;
  OutputBuffer out;              // replies and events not yet sent
  std::vector<Watch> watches;    // active watch streams
  int jobs_pending = 0;          // operations whose reply is to come
  // Leases from "hold", by the hold request's id, while their hold job
  // runs (draining or held). A hold that failed, was revoked, released or
  // ended with the session leaves this map (PruneLeases): no lease outlives
  // its job, so none keeps a Database alive.
  std::map<int64_t, std::shared_ptr<Lease>> leases;
  // Hold ids whose lease was revoked, so that a late release answers
  // "intact":false; the most recent kRevokedRemembered only.
  std::deque<int64_t> revoked_holds;
  static constexpr size_t kRevokedRemembered = 16;
  // The last time a request (a non-empty line) arrived: idle means no
  // request, not no bytes.
  Clock::time_point last_request;
  // The last time the client took bytes of its output (or the output was
  // empty): a client that stops reading is dropped once this is too old.
  Clock::time_point last_output_progress;
  // Since when the incomplete request in `in` has been arriving.
  std::optional<Clock::time_point> partial_since;
  // The client shut down its sending side; its watches still stream.
  bool input_closed = false;
  // Set when the session is to end: stop reading, send what is queued
  // (until the deadline), then close.
  std::optional<Clock::time_point> closing_deadline;

 private:
  const uint64_t id_;
  UniqueFd fd_;
  const PeerCreds peer_;
  std::vector<std::function<void()>> hooks_;
};

}  // namespace quiesce::control

#endif  // QUIESCE_CONTROL_SESSION_H_
