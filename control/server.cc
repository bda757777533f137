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

}  // namespace

std::unique_ptr<Server> Server::Start(Context* context, ServerOptions options,
                                      std::string* error) {
  try {
    Listener listener;
    if (!Listen(options.socket, options.create_dir, &listener, error)) {
      return nullptr;
    }
    UniqueFd wake(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    if (!wake) {
      *error = std::string("eventfd: ") + ErrnoText(errno);
      Unlisten(&listener);
      return nullptr;
    }
    std::unique_ptr<Server> server(new Server(
        context, std::move(options), std::move(listener), std::move(wake)));
    // The thread starts with every signal blocked: the host's signals are
    // for the host's threads.
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    try {
      server->thread_ = std::thread([s = server.get()] { s->Run(); });
    } catch (const std::exception& e) {
      pthread_sigmask(SIG_SETMASK, &old, nullptr);
      *error = std::string("cannot start the server thread: ") + e.what();
      return nullptr;  // the destructor unlinks the socket
    }
    pthread_sigmask(SIG_SETMASK, &old, nullptr);
    context->SetCommitObserver(server.get());
    return server;
  } catch (const std::exception& e) {
    *error = std::string("cannot start the control server: ") + e.what();
    return nullptr;
  }
}

Server::Server(Context* context, ServerOptions options, Listener listener,
               UniqueFd wake)
    : context_(context),
      options_(std::move(options)),
      listener_(std::move(listener)),
      wake_(std::move(wake)),
      jobs_([this] { Wake(); }, kMaxJobs) {}

Server::~Server() { Stop(); }

void Server::Stop() {
  if (stopped_) return;
  stopped_ = true;
  context_->SetCommitObserver(nullptr);
  // A commit that read the observer before it was cleared calls it with its
  // database's mutex held: taking every database's mutex once waits such a
  // call out, so the eventfd is not written after it is closed.
  for (const auto& db : context_->Databases()) {
    MutexLock lock(&db->mu);
  }
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
      if (keep && !s.out.empty() &&
          s.out.FlushTo(s.fd()) == OutputBuffer::Flush::kError) {
        keep = false;
      }
      if (s.input_closed && s.watches.empty()) BeginClose(s);
      if (keep && s.closing_deadline &&
          (s.out.empty() || now >= *s.closing_deadline)) {
        keep = false;
      }
      if (keep && !s.closing_deadline) {
        if (s.partial_since &&
            now - *s.partial_since >= options_.limits.request_timeout) {
          keep = Queue(s, EncodeError(std::nullopt, ErrorCode::kTimeout,
                                      "a request did not arrive whole in time"));
          BeginClose(s);
        } else if (s.watches.empty() && s.out.empty() &&
                   s.jobs_pending == 0 && s.leases.empty() &&
                   now - s.last_input >= options_.limits.idle_timeout) {
          keep = Queue(s, EncodeError(std::nullopt, ErrorCode::kTimeout,
                                      "idle for too long"));
          BeginClose(s);
        }
      }
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
    const ReadResult r = ReadInto(s.fd(), &s.in, &s.fds_in,
                                  options_.limits.max_pending_fds);
    if (r == ReadResult::kWouldBlock) break;
    if (r == ReadResult::kError) return false;
    if (r == ReadResult::kData) s.last_input = Clock::now();
    std::string line;
    for (bool more = true; more && !s.closing_deadline;) {
      switch (s.in.Pop(&line)) {
        case LineBuffer::Next::kLine:
          if (!HandleLine(s, line)) return false;
          break;
        case LineBuffer::Next::kTooLong:
          if (!Queue(s, EncodeError(std::nullopt, ErrorCode::kBadRequest,
                                    "a request is longer than " +
                                        std::to_string(s.in.max_line()) +
                                        " bytes"))) {
            return false;
          }
          BeginClose(s);
          more = false;
          break;
        case LineBuffer::Next::kNeedMore:
          more = false;
          break;
      }
    }
    if (s.in.HasPartial()) {
      if (!s.partial_since) s.partial_since = s.last_input;
    } else {
      s.partial_since.reset();
    }
    // The client is done sending: answer what it sent, then close, unless
    // it is watching (`... | socat` keeps reading a watch after its input
    // ends).
    if (r == ReadResult::kClosed) {
      s.input_closed = true;
      break;
    }
  }
  return true;
}

bool Server::HandleLine(Session& s, const std::string& line) {
  if (line.empty()) return true;  // a stray newline is not a request
  Request request;
  DecodeError decode_error;
  if (!DecodeRequest(line, &request, &decode_error)) {
    // Descriptors that came with an unreadable request go back at once.
    s.fds_in.clear();
    return Queue(s, EncodeError(decode_error.id, ErrorCode::kBadRequest,
                                decode_error.message));
  }
  if (static_cast<size_t>(request.fds) > s.fds_in.size()) {
    // The descriptors travel with the line's first bytes; fewer than
    // declared means the stream and its descriptors are out of step.
    const bool queued = Queue(
        s, EncodeError(request.id, ErrorCode::kBadRequest,
                       "the request declares " + std::to_string(request.fds) +
                           " descriptors but " +
                           std::to_string(s.fds_in.size()) + " arrived"));
    s.fds_in.clear();
    BeginClose(s);
    return queued;
  }
  Call call{context_, jobs_, options_.policy, options_.limits, s, request, {}};
  for (int64_t k = 0; k < request.fds; ++k) {
    call.fds.push_back(std::move(s.fds_in.front()));
    s.fds_in.pop_front();
  }
  Outcome outcome;
  if (const Operation* op = FindOperation(request.op); op == nullptr) {
    outcome = Outcome::Error(ErrorCode::kUnknownOp,
                             "no operation \"" + request.op +
                                 "\" (hello lists them)");
  } else if (request.fds > op->max_fds) {
    outcome = Outcome::Error(ErrorCode::kBadRequest,
                             request.op + " takes at most " +
                                 std::to_string(op->max_fds) + " descriptors");
  } else {
    try {
      outcome = op->run(call);
    } catch (const std::exception& e) {
      outcome = Outcome::Error(ErrorCode::kInternal, e.what());
    }
  }
  if (outcome.deferred) return true;
  return Queue(s, outcome.ok ? EncodeOk(request.id, outcome.result)
                             : EncodeError(request.id, outcome.code,
                                           outcome.message));
}

bool Server::Queue(Session& s, const std::string& bytes) {
  s.out.Append(bytes);
  // A client that does not read its replies is not worth host memory.
  return s.out.size() <= options_.limits.max_output;
}

bool Server::Pump(Session& s) {
  if (!PumpWatches(context_, options_.policy, options_.limits, &s)) {
    BeginClose(s);
  }
  return s.out.size() <= options_.limits.max_output;
}

void Server::BeginClose(Session& s) {
  if (!s.closing_deadline) {
    s.closing_deadline = Clock::now() + options_.limits.close_linger;
  }
}

Clock::time_point Server::Deadline(const Session& s) const {
  if (s.closing_deadline) return *s.closing_deadline;
  Clock::time_point deadline = Clock::time_point::max();
  if (s.partial_since) {
    deadline = *s.partial_since + options_.limits.request_timeout;
  }
  if (s.watches.empty() && s.out.empty() && s.jobs_pending == 0 &&
      s.leases.empty()) {
    deadline = std::min(deadline, s.last_input + options_.limits.idle_timeout);
  }
  return deadline;
}

}  // namespace quiesce::control
