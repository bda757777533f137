#include "client.h"

#include <errno.h>
#include <poll.h>
#include <unistd.h>

#include <chrono>

#include "errno_text.h"
#include "socket_path.h"

namespace quiesce::control {
namespace {

using Clock = std::chrono::steady_clock;

int MsLeft(Clock::time_point deadline) {
  const auto left = std::chrono::ceil<std::chrono::milliseconds>(
      deadline - Clock::now());
  return left.count() < 0 ? 0 : static_cast<int>(left.count());
}

}  // namespace

const char* StatusName(Client::Status status) {
  switch (status) {
    case Client::Status::kOk: return "ok";
    case Client::Status::kTimeout: return "timed out";
    case Client::Status::kClosed: return "connection closed by the host";
    case Client::Status::kError: return "error";
  }
  return "?";
}

std::unique_ptr<Client> Client::Connect(
    const std::string& path, int timeout_ms, std::string* error,
    std::optional<uid_t> expected_server_uid) {
  UniqueFd fd = ConnectUnix(path, timeout_ms);
  if (!fd) {
    const int err = errno;
    *error = "cannot connect to " + path + ": " + ErrnoText(err);
    if (err == ENOENT) {
      *error +=
          " (is the host running with the shim loaded? If it is, its "
          "SQLite log says why the control server did not start: for one, "
          "a socket directory that is not the host user's own with mode "
          "0700)";
    } else if (err == ECONNREFUSED) {
      *error += " (nothing listens there: the host that served it has exited)";
    }
    errno = err;
    return nullptr;
  }
  if (IsAbstract(path)) {
    // Anyone can bind an abstract name first: make sure it is the host.
    const uid_t want = expected_server_uid.value_or(geteuid());
    PeerCreds server;
    if (!ReadPeerCreds(fd.get(), &server) || server.uid != want) {
      *error = path + " is served by uid " + std::to_string(server.uid) +
               ", not the expected uid " + std::to_string(want);
      errno = EPERM;
      return nullptr;
    }
  }
  return std::unique_ptr<Client>(new Client(std::move(fd)));
}

Client::Status Client::Send(const std::string& op, const json& args,
                            const std::vector<int>& fds, int64_t* id,
                            int timeout_ms, std::string* error) {
  *id = next_id_++;
  const std::string line =
      EncodeRequest(*id, op, args, static_cast<int64_t>(fds.size()));
  if (line.empty()) {
    *error = "cannot encode the request";
    return Status::kError;
  }
  if (!SendAll(fd_.get(), line, fds, timeout_ms)) {
    const int err = errno;
    *error = std::string("send: ") + ErrnoText(err);
    if (err == ETIMEDOUT) return Status::kTimeout;
    return err == EPIPE || err == ECONNRESET ? Status::kClosed
                                             : Status::kError;
  }
  return Status::kOk;
}

Client::Status Client::Read(Message* message, int timeout_ms,
                            std::string* error) {
  if (!early_.empty()) {
    *message = std::move(early_.front());
    early_.pop_front();
    return Status::kOk;
  }
  return ReadWire(message, timeout_ms, error);
}

Client::Status Client::ReadWire(Message* message, int timeout_ms,
                                std::string* error) {
  const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  std::deque<UniqueFd> ignored_fds;  // servers send none; any is closed
  for (;;) {
    std::string line;
    switch (in_.Pop(&line)) {
      case LineBuffer::Next::kLine: {
        if (line.empty()) continue;
        Result<Message> decoded = DecodeMessage(line);
        if (!decoded.ok()) {
          *error = decoded.error().message;
          return Status::kError;
        }
        *message = std::move(decoded.value());
        return Status::kOk;
      }
      case LineBuffer::Next::kTooLong:
        *error = "the host sent an overlong line";
        return Status::kError;
      case LineBuffer::Next::kNeedMore:
        break;
    }
    pollfd p{fd_.get(), POLLIN, 0};
    const int n = poll(&p, 1, MsLeft(deadline));
    if (n < 0 && errno != EINTR) {
      *error = std::string("poll: ") + ErrnoText(errno);
      return Status::kError;
    }
    if (n == 0) {
      *error = "no answer in time";
      return Status::kTimeout;
    }
    switch (ReadInto(fd_.get(), &in_, &ignored_fds, 0)) {
      case ReadResult::kData:
      case ReadResult::kWouldBlock:
        break;
      case ReadResult::kClosed:
        *error = "the host closed the connection";
        return Status::kClosed;
      case ReadResult::kError:
        *error = errno == ECONNRESET ? "the host reset the connection"
                                     : std::string("read: ") +
                                           ErrnoText(errno);
        return errno == ECONNRESET ? Status::kClosed : Status::kError;
    }
  }
}

Client::Status Client::Call(const std::string& op, const json& args,
                            Message* reply, int timeout_ms, std::string* error,
                            const std::vector<int>& fds) {
  const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  int64_t id = 0;
  Status status = Send(op, args, fds, &id, timeout_ms, error);
  // A refused connection may already hold the host's reason: read it.
  if (status == Status::kClosed) {
    Message m;
    std::string ignored;
    if (ReadWire(&m, 0, &ignored) == Status::kOk && !m.is_event && !m.id) {
      *reply = std::move(m);
      return Status::kOk;
    }
  }
  if (status != Status::kOk) return status;
  for (;;) {
    Message m;
    status = ReadWire(&m, MsLeft(deadline), error);
    if (status != Status::kOk) return status;
    if (!m.is_event && (!m.id || *m.id == id)) {
      *reply = std::move(m);
      return Status::kOk;
    }
    early_.push_back(std::move(m));  // an event, or another request's reply
  }
}

}  // namespace quiesce::control
