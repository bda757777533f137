#include "server.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/socket.h>

#include <algorithm>
#include <vector>

#include "codec.h"
#include "errno_text.h"
#include "handlers.h"
#include "watch.h"

namespace quiesce::control {
namespace {

// How often watches are looked at without a commit waking the thread (to
// report a database the host closed).
constexpr auto kWatchTick = std::chrono::milliseconds(250);
// How long accepting pauses when the process is out of descriptors.
constexpr auto kAcceptBackoff = std::chrono::milliseconds(100);
// Reads per session per poll round, so that one chatty client cannot
// starve the others.
constexpr int kReadsPerRound = 4;

int PollTimeoutMs(Clock::time_point now, Clock::time_point deadline) {
  if (deadline <= now) return 0;
  const auto ms =
      std::chrono::ceil<std::chrono::milliseconds>(deadline - now).count();
  return static_cast<int>(std::min<int64_t>(ms, 60 * 1000));
}

// Runs the operation a request names, once its name and descriptor count
// are checked; a handler's exception is an internal error, never the host's.
Outcome Dispatch(Call& call, const Request& request) {
  const Operation* op = FindOperation(request.op);
  if (op == nullptr) {
    return Error{ErrorCode::kUnknownOp,
                 "no operation \"" + request.op + "\" (hello lists them)"};
  }
  if (request.fds > op->max_fds) {
    return Error{ErrorCode::kBadRequest, request.op + " takes at most " +
                                             std::to_string(op->max_fds) +
                                             " descriptors"};
  }
  try {
    return op->run(call);
  } catch (const std::exception& e) {
    return Error{ErrorCode::kInternal, e.what()};
  }
}

}  // namespace

Result<std::unique_ptr<Server>> Server::Start(Context* context,
                                              ServerOptions options) {
  try {
    Result<Listener> listener = Listen(options.socket, options.create_dir);
    if (!listener.ok()) return listener.error();
    UniqueFd wake(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    if (!wake) {
      Error error{ErrorCode::kIoError,
                  std::string("eventfd: ") + ErrnoText(errno)};
      Unlisten(&listener.value());
      return error;
    }
    std::unique_ptr<Server> server(
        new Server(context, std::move(options), std::move(listener.value()),
                   std::move(wake)));
    // The thread starts with every signal blocked: the host's signals are
    // for the host's threads.
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    try {
      server->thread_ = std::thread([s = server.get()] { s->Run(); });
    } catch (const std::exception& e) {
      pthread_sigmask(SIG_SETMASK, &old, nullptr);
      // The server's destructor unlinks the socket.
      return Error{ErrorCode::kInternal,
                   std::string("cannot start the server thread: ") + e.what()};
    }
    pthread_sigmask(SIG_SETMASK, &old, nullptr);
    context->SetCommitObserver(server.get());
    return server;
  } catch (const std::exception& e) {
    return Error{ErrorCode::kInternal,
                 std::string("cannot start the control server: ") + e.what()};
  }
}

Server::Server(Context* context, ServerOptions options, Listener listener,
               UniqueFd wake)
    : context_(context),
      options_(std::move(options)),
      listener_(std::move(listener)),
      wake_(std::move(wake)),
      payloads_(options_.limits.max_payload_total,
                options_.limits.max_payload_client),
      jobs_([this] { Wake(); }, kMaxJobs) {}

Server::~Server() { Stop(); }

void Server::Stop() {
  if (stopped_) return;
  stopped_ = true;
  // Once removed, no commit is still calling us: the eventfd can close.
  context_->RemoveCommitObserver();
  stopping_.store(true);
  Wake();
  if (thread_.joinable()) thread_.join();
  // Every job ends (cancelled: leases reopen their gates) before the
  // sessions and the eventfd its posts would wake go away.
  jobs_.Shutdown();
  sessions_.clear();
  Unlisten(&listener_);
}

void Server::AbandonAfterFork() {
  listener_.fd.reset();
  wake_.reset();
}

void Server::OnCommitEvents(Database&) { Wake(); }

void Server::Deliver() {
  for (Jobs::Delivery& d : jobs_.Take()) {
    for (const auto& s : sessions_) {
      if (s->id() != d.session) continue;
      if (d.last && s->jobs_pending > 0) --s->jobs_pending;
      if (!d.line.empty() && !Queue(*s, d.line)) BeginClose(*s);
      if (d.last) s->PruneLeases();
      break;
    }
  }
}

void Server::Wake() {
  const uint64_t one = 1;
  // Cannot block (EFD_NONBLOCK); a saturated counter already means "wake".
  [[maybe_unused]] const ssize_t n = write(wake_.get(), &one, sizeof(one));
}

void Server::Log(int code, const std::string& message) {
  context_->api().log(code, "quiesce: control server: %s", message.c_str());
}

void Server::Run() {
  try {
    Loop();
  } catch (const std::exception& e) {
    Log(SQLITE_INTERNAL, std::string("stopped: ") + e.what());
  } catch (...) {
    Log(SQLITE_INTERNAL, "stopped by an unknown exception");
  }
  // Clients see their connection end rather than wait for the host's
  // shutdown.
  sessions_.clear();
}

void Server::Loop() {
  Clock::time_point accept_paused_until{};
  std::vector<pollfd> polled;
  while (!stopping_.load()) {
    Clock::time_point now = Clock::now();
    Clock::time_point next = now + std::chrono::hours(1);
    polled.clear();
    polled.push_back({wake_.get(), POLLIN, 0});
    const bool accepting = now >= accept_paused_until;
    polled.push_back({accepting ? listener_.fd.get() : -1, POLLIN, 0});
    if (!accepting) next = std::min(next, accept_paused_until);
    for (const auto& s : sessions_) {
      short events = s->closing_deadline || s->input_closed ? 0 : POLLIN;
      if (!s->out.empty()) events |= POLLOUT;
      polled.push_back({s->fd(), events, 0});
      next = std::min(next, Deadline(*s));
      if (!s->watches.empty()) next = std::min(next, now + kWatchTick);
    }
    if (poll(polled.data(), polled.size(), PollTimeoutMs(now, next)) < 0) {
      if (errno == EINTR) continue;
      Log(SQLITE_IOERR, std::string("poll: ") + ErrnoText(errno));
      return;
    }
    if (polled[0].revents & POLLIN) {
      uint64_t count;
      [[maybe_unused]] const ssize_t n = read(wake_.get(), &count, sizeof(count));
    }
    Deliver();
    now = Clock::now();
    size_t i = 2;  // the sessions polled come first, in list order
    for (auto it = sessions_.begin(); it != sessions_.end() && i < polled.size();
         ++i) {
      Session& s = **it;
      bool keep = Serve(s, polled[i].revents);
      if (keep && !s.watches.empty() && !s.closing_deadline) {
        keep = Pump(s);
      }
      if (keep && !s.out.empty()) {
        const size_t before = s.out.size();
        if (s.out.FlushTo(s.fd()) == OutputBuffer::Flush::kError) {
          keep = false;
        } else if (s.out.size() < before) {
          s.last_output_progress = now;
        }
      }
      if (s.out.empty()) s.last_output_progress = now;
      if (s.input_closed && s.watches.empty() && s.jobs_pending == 0) {
        BeginClose(s);
      }
      if (keep && s.closing_deadline &&
          (s.out.empty() || now >= *s.closing_deadline)) {
        keep = false;
      }
      if (keep && !s.closing_deadline) keep = Expire(s, now);
      if (!keep) jobs_.CancelSession(s.id());
      it = keep ? std::next(it) : sessions_.erase(it);
    }
    if (accepting && (polled[1].revents & POLLIN)) {
      if (!Accept()) accept_paused_until = Clock::now() + kAcceptBackoff;
    }
  }
}

bool Server::Accept() {
  for (;;) {
    UniqueFd fd(accept4(listener_.fd.get(), nullptr, nullptr,
                        SOCK_NONBLOCK | SOCK_CLOEXEC));
    if (!fd) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return true;
      Log(SQLITE_IOERR, std::string("accept: ") + ErrnoText(errno));
      return false;
    }
    PeerCreds peer;
    if (!ReadPeerCreds(fd.get(), &peer)) continue;
    if (!PeerAllowed(options_.policy, peer)) {
      Refuse(fd.get(), ErrorCode::kForbidden,
             "uid " + std::to_string(peer.uid) +
                 " may not use this control socket");
      continue;
    }
    const ServerLimits& limits = options_.limits;
    if (sessions_.size() >= limits.max_connections) {
      Refuse(fd.get(), ErrorCode::kBusy, "too many connections");
      continue;
    }
    size_t& of_uid = sessions_per_uid_[peer.uid];
    if (of_uid >= limits.max_per_uid) {
      Refuse(fd.get(), ErrorCode::kBusy,
             "too many connections from uid " + std::to_string(peer.uid));
      continue;
    }
    auto session = std::make_unique<Session>(++next_session_id_, std::move(fd),
                                             peer, limits.max_line,
                                             Clock::now());
    ++of_uid;
    session->OnDisconnect([this, uid = peer.uid] {
      const auto it = sessions_per_uid_.find(uid);
      if (it != sessions_per_uid_.end() && --it->second == 0) {
        sessions_per_uid_.erase(it);
      }
    });
    sessions_.push_back(std::move(session));
  }
}

void Server::Refuse(int fd, ErrorCode code, const std::string& message) {
  // Best effort: a fresh socket's buffer takes one line without blocking.
  const std::string line = EncodeError(std::nullopt, code, message);
  [[maybe_unused]] const ssize_t n =
      send(fd, line.data(), line.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
  shutdown(fd, SHUT_WR);
}

bool Server::Serve(Session& s, short revents) {
  if (revents & POLLNVAL) return false;
  // After the client's shutdown(SHUT_WR), POLLHUP means it is gone entirely.
  if (s.input_closed && (revents & (POLLHUP | POLLERR))) return false;
  if (s.closing_deadline || s.input_closed ||
      !(revents & (POLLIN | POLLHUP | POLLERR))) {
    return true;
  }
  for (int reads = 0; reads < kReadsPerRound && !s.closing_deadline; ++reads) {
    const size_t max_fds = options_.limits.max_pending_fds;
    std::deque<UniqueFd> got;
    const uint64_t read_start = s.in.received();
    const ReadResult r =
        ReadInto(s.fd(), &s.in, &got,
                 max_fds > s.fds_in.size() ? max_fds - s.fds_in.size() : 0);
    if (r == ReadResult::kWouldBlock) break;
    if (r == ReadResult::kError) return false;
    for (UniqueFd& fd : got) {
      s.fds_in.push_back({std::move(fd), read_start, s.in.received()});
    }
    std::string line;
    for (bool more = true; more && !s.closing_deadline;) {
      const LineBuffer::Next next = s.in.Pop(&line);
      if (!Consume(s, next, line)) return false;
      more = next == LineBuffer::Next::kLine;
    }
    // The client is done sending: its last line counts even without a
    // newline. Answer what it sent, then close, unless it is watching
    // (`... | socat` keeps reading a watch after its input ends).
    if (r == ReadResult::kClosed && !s.closing_deadline) {
      const LineBuffer::Next next = s.in.PopRest(&line);
      if (!Consume(s, next, line)) return false;
    }
    if (s.in.HasPartial()) {
      if (!s.partial_since) s.partial_since = Clock::now();
    } else {
      s.partial_since.reset();
    }
    if (r == ReadResult::kClosed) {
      s.input_closed = true;
      break;
    }
  }
  return true;
}

// Which pending descriptors are this line's. The kernel ends a read at
// the message that carried descriptors, so a batch that arrived in a read
// ending at or before the line's end can only be the line's; the first
// batch of a read that began before the line's end and went past it may be
// the line's (sent with it and more) or the next line's.
size_t Server::ClaimFds(Session& s, uint64_t line_end, int64_t declared,
                        std::vector<UniqueFd>* out) {
  size_t own = 0;
  while (own < s.fds_in.size() && s.fds_in[own].read_end <= line_end) ++own;
  size_t take = own;
  if (own == 0 && declared > 0 && !s.fds_in.empty() &&
      s.fds_in.front().read_start < line_end) {
    const uint64_t start = s.fds_in.front().read_start;
    const uint64_t end = s.fds_in.front().read_end;
    while (take < s.fds_in.size() && s.fds_in[take].read_start == start &&
           s.fds_in[take].read_end == end) {
      ++take;
    }
  }
  for (size_t k = 0; k < take; ++k) {
    out->push_back(std::move(s.fds_in.front().fd));
    s.fds_in.pop_front();
  }
  return take;
}

bool Server::Consume(Session& s, LineBuffer::Next next,
                     const std::string& line) {
  switch (next) {
    case LineBuffer::Next::kLine:
      return HandleLine(s, line, s.in.line_end());
    case LineBuffer::Next::kTooLong:
      if (!Queue(s, EncodeError(std::nullopt, ErrorCode::kBadRequest,
                                "a request is longer than " +
                                    std::to_string(s.in.max_line()) +
                                    " bytes"))) {
        return false;
      }
      BeginClose(s);
      return true;
    case LineBuffer::Next::kNeedMore:
      return true;
  }
  return true;
}

bool Server::HandleLine(Session& s, const std::string& line,
                        uint64_t line_end) {
  if (line.empty()) {
    // A stray newline is not a request; descriptors sent with it are
    // closed.
    std::vector<UniqueFd> stray;
    ClaimFds(s, line_end, 0, &stray);
    return true;
  }
  Request request;
  DecodeError decode_error;
  if (!DecodeRequest(line, &request, &decode_error)) {
    // Descriptors that came with an unreadable request go back at once.
    std::vector<UniqueFd> refused;
    ClaimFds(s, line_end, 0, &refused);
    return Queue(s, EncodeError(decode_error.id, ErrorCode::kBadRequest,
                                decode_error.message));
  }
  s.last_request = Clock::now();
  Call call{context_, jobs_,  payloads_, options_.policy, options_.limits,
            s,        request, {}};
  const size_t arrived = ClaimFds(s, line_end, request.fds, &call.fds);
  if (arrived != static_cast<size_t>(request.fds)) {
    const std::string message =
        "the request declares " + std::to_string(request.fds) +
        " descriptors (\"fds\") but " + std::to_string(arrived) +
        " arrived with it; all were closed";
    call.fds.clear();  // closes them
    const bool queued =
        Queue(s, EncodeError(request.id, ErrorCode::kBadRequest, message));
    // Fewer than declared: the rest may still be coming, the stream and
    // its descriptors are out of step.
    if (arrived < static_cast<size_t>(request.fds)) BeginClose(s);
    return queued;
  }
  const Outcome outcome = Dispatch(call, request);
  if (!outcome.ok()) {
    return Queue(s, EncodeError(request.id, outcome.error().code,
                                outcome.error().message));
  }
  if (outcome.value().deferred) return true;
  return Queue(s, EncodeOk(request.id, outcome.value().result));
}

bool Server::Queue(Session& s, const std::string& bytes) {
  s.out.Append(bytes);
  return Bounded(s);
}

bool Server::Bounded(Session& s) {
  const size_t limit = options_.limits.max_output;
  if (s.out.size() <= limit) return true;
  // A client that does not read its replies is not worth host memory: what
  // it has not begun to receive goes, its reason takes its place, and the
  // session ends (the reason has the linger to leave).
  if (s.closing_deadline && s.out.size() > 2 * limit) return false;
  s.out.DropUnsentLines();
  const std::string reason = "not reading: more than " +
                             std::to_string(limit) +
                             " bytes of replies and events unsent";
  for (const Watch& w : s.watches) {
    s.out.Append(EncodeEvent(w.request_id, "dropped", {{"reason", reason}}));
  }
  s.watches.clear();
  s.out.Append(EncodeError(std::nullopt, ErrorCode::kBusy, reason));
  BeginClose(s);
  return true;
}

bool Server::Pump(Session& s) {
  if (!PumpWatches(context_, options_.policy, options_.limits, &s)) {
    BeginClose(s);
  }
  return Bounded(s);
}

void Server::BeginClose(Session& s) {
  if (!s.closing_deadline) {
    s.closing_deadline = Clock::now() + options_.limits.close_linger;
  }
}

bool Server::Expire(Session& s, Clock::time_point now) {
  const ServerLimits& limits = options_.limits;
  if (s.partial_since && now - *s.partial_since >= limits.request_timeout) {
    const bool queued =
        Queue(s, EncodeError(std::nullopt, ErrorCode::kTimeout,
                             "a request did not arrive whole in time"));
    BeginClose(s);
    return queued;
  }
  if (!s.out.empty() && now - s.last_output_progress >= limits.write_stall) {
    // A client that stopped reading, whatever it asked for: its slot and
    // its buffer go. The reason is queued for a client that reads again
    // within the linger; the rest of its output is dropped with it.
    const std::string reason =
        "not reading: " + std::to_string(s.out.size()) +
        " bytes unsent for " +
        std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(
                           limits.write_stall)
                           .count()) +
        " ms";
    s.out.DropUnsentLines();
    for (const Watch& w : s.watches) {
      s.out.Append(EncodeEvent(w.request_id, "dropped", {{"reason", reason}}));
    }
    if (s.watches.empty()) {
      s.out.Append(EncodeError(std::nullopt, ErrorCode::kTimeout, reason));
    }
    s.watches.clear();
    BeginClose(s);
    return true;
  }
  // Idle: no request for the idle timeout. Leases do not keep a session
  // (each ends with its own timer); a running job and a watch do.
  if (s.watches.empty() && s.jobs_pending == 0 &&
      now - s.last_request >= limits.idle_timeout) {
    const bool queued = Queue(
        s, EncodeError(std::nullopt, ErrorCode::kTimeout,
                       "no request for " +
                           std::to_string(limits.idle_timeout.count()) +
                           " ms: idle for too long"));
    BeginClose(s);
    return queued;
  }
  return true;
}

Clock::time_point Server::Deadline(const Session& s) const {
  if (s.closing_deadline) return *s.closing_deadline;
  const ServerLimits& limits = options_.limits;
  Clock::time_point deadline = Clock::time_point::max();
  if (s.partial_since) {
    deadline = *s.partial_since + limits.request_timeout;
  }
  if (!s.out.empty()) {
    deadline = std::min(deadline, s.last_output_progress + limits.write_stall);
  }
  if (s.watches.empty() && s.jobs_pending == 0) {
    deadline = std::min(deadline, s.last_request + limits.idle_timeout);
  }
  return deadline;
}

}  // namespace quiesce::control
