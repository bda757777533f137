// The control server: one thread that owns the listening socket and every
// client session, and answers requests through the handler table.
//
// The thread polls the listener, a wake-up eventfd and the sessions. The
// host's commit path only writes to that eventfd (through the
// CommitObserver hook, under the database's mutex), so it never waits for
// the server, let alone for a client. Every client socket is non-blocking
// and every buffer, count and wait is capped (server_limits.h).
//
// Thread safety: Start and Stop from any one thread at a time (the host's
// registration and shutdown); everything else happens on the server's own
// thread. Lifetime: Stop (or the destructor) wakes the thread, joins it,
// closes every session and unlinks the socket.
#ifndef QUIESCE_CONTROL_SERVER_H_
#define QUIESCE_CONTROL_SERVER_H_

#include <atomic>
#include <cstdint>
#include <list>
#include <map>
#include <memory>
#include <string>
#include <thread>

#include "access.h"
#include "codec.h"
#include "context.h"
#include "jobs.h"
#include "payload_budget.h"
#include "server_limits.h"
#include "session.h"
#include "socket_path.h"
#include "unique_fd.h"

namespace quiesce::control {

struct ServerOptions {
  std::string socket;       // a path, or "@name" for an abstract socket
  bool create_dir = false;  // create the socket's directory (default path)
  AccessPolicy policy;
  ServerLimits limits;
};

class Server : private CommitObserver {
 public:
  // Listens and starts the thread; the error says why when the socket
  // cannot be made safe (Listen) or the thread cannot start.
  static Result<std::unique_ptr<Server>> Start(Context* context,
                                               ServerOptions options);
  ~Server() override;
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  void Stop();
  // In a child made by fork(): the thread does not exist here. Closes the
  // listener and wake-up descriptors without unlinking or joining; the
  // object must then be leaked, never destroyed.
  void AbandonAfterFork();
  const std::string& socket() const { return options_.socket; }

 private:
  Server(Context* context, ServerOptions options, Listener listener,
         UniqueFd wake);

  // CommitObserver, on the host's commit path: one write(2), nothing more.
  void OnCommitEvents(Database& db) override;
  void Wake();

  void Run();
  void Loop();
  // Accepts every pending connection; false when accepting must pause
  // (out of descriptors).
  bool Accept();
  void Refuse(int fd, ErrorCode code, const std::string& message);
  // Reads, answers and flushes one session; false when it must be closed.
  bool Serve(Session& session, short revents);
  // What the input produced: a line is handled; a line over the cap is
  // answered and the session closes. False when it must be closed now.
  bool Consume(Session& session, LineBuffer::Next next,
               const std::string& line);
  // One request line, ending at stream offset line_end.
  bool HandleLine(Session& session, const std::string& line,
                  uint64_t line_end);
  // Moves the descriptors that belong to the line ending at line_end into
  // *out; returns how many.
  size_t ClaimFds(Session& session, uint64_t line_end, int64_t declared,
                  std::vector<UniqueFd>* out);
  // Applies the session's timeouts (request, stalled output, idle); false
  // when it must be closed at once.
  bool Expire(Session& session, Clock::time_point now);
  bool Queue(Session& session, const std::string& bytes);
  // Enforces max_output: a session over it is closed with its reason;
  // false when it must go at once.
  bool Bounded(Session& session);
  // Moves watched events into the session's output; false when the
  // session must be closed at once.
  bool Pump(Session& session);
  // Ends a session: its queued bytes get a last chance to leave.
  void BeginClose(Session& session);
  // The time by which the session must be served again (a timeout).
  Clock::time_point Deadline(const Session& session) const;
  void Log(int code, const std::string& message);

  Context* const context_;
  const ServerOptions options_;
  Listener listener_;
  UniqueFd wake_;  // eventfd: commits and Stop wake the thread
  std::atomic<bool> stopping_{false};
  std::thread thread_;
  bool stopped_ = false;  // Stop ran (owner's thread only)

  // Hands what jobs posted to their sessions.
  void Deliver();

  // Injection payloads held by jobs (before jobs_: it outlives them).
  PayloadBudget payloads_;
  // Snapshots, holds and injections run here, off the poll thread.
  Jobs jobs_;

  // --- the server thread's own ---------------------------------------------
  std::list<std::unique_ptr<Session>> sessions_;
  std::map<uid_t, size_t> sessions_per_uid_;
  uint64_t next_session_id_ = 0;
};

}  // namespace quiesce::control

#endif  // QUIESCE_CONTROL_SERVER_H_
