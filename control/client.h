// The client side of the control protocol, shared by quiescectl, the
// benchmark and the tests: connect (checking the server's credentials on
// abstract sockets, which have no file permissions), send requests with
// optional descriptors, read replies and events with timeouts.
//
// Thread safety: one Client per thread. Not for use inside the host.
#ifndef QUIESCE_CONTROL_CLIENT_H_
#define QUIESCE_CONTROL_CLIENT_H_

#include <sys/types.h>

#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "codec.h"
#include "framing.h"
#include "unique_fd.h"

namespace quiesce::control {

class Client {
 public:
  enum class Status {
    kOk,
    kTimeout,      // nothing (complete) arrived in time
    kClosed,       // the server closed the connection
    kError,        // a socket error, or a message that does not decode
  };

  // Connects to a socket path or "@name". For "@name" the server's uid must
  // be expected_server_uid (default: this process's uid). Null with *error
  // (and errno of the failed call) otherwise.
  static std::unique_ptr<Client> Connect(
      const std::string& path, int timeout_ms, std::string* error,
      std::optional<uid_t> expected_server_uid = std::nullopt);

  // Sends {"id":<next>,"op":op,...args}, with `fds` attached; *id receives
  // the request's id.
  Status Send(const std::string& op, const json& args,
              const std::vector<int>& fds, int64_t* id, int timeout_ms,
              std::string* error);

  // Reads the next message: a reply or an event.
  Status Read(Message* message, int timeout_ms, std::string* error);

  // Sends a request and waits for its reply. Events and replies to earlier
  // requests that arrive meanwhile are kept for Read. A reply without an id
  // (the server refusing the connection or an unreadable line) also ends
  // the wait.
  Status Call(const std::string& op, const json& args, Message* reply,
              int timeout_ms, std::string* error,
              const std::vector<int>& fds = {});

  int fd() const { return fd_.get(); }

 private:
  explicit Client(UniqueFd fd) : fd_(std::move(fd)) {}
  // Reads the next message from the socket, past early_.
  Status ReadWire(Message* message, int timeout_ms, std::string* error);

  UniqueFd fd_;
  // Replies can be long (a list of many databases); requests cannot.
  LineBuffer in_{16 * 1024 * 1024};
  // Events, and replies to other requests, read while waiting in Call.
  std::deque<Message> early_;
  int64_t next_id_ = 1;
};

const char* StatusName(Client::Status status);

}  // namespace quiesce::control

#endif  // QUIESCE_CONTROL_CLIENT_H_
