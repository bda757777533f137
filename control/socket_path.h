// Where the control socket lives and how it is made safe to listen on.
//
// A path socket sits in a directory owned by the host's uid with mode 0700
// and is itself 0600; the host refuses to listen anywhere else. "@name" is
// a Linux abstract socket (Android): no file, no permissions, so peer
// credentials are checked on both ends. A socket file left by a dead host
// is replaced; a live one is never stolen.
#ifndef QUIESCE_CONTROL_SOCKET_PATH_H_
#define QUIESCE_CONTROL_SOCKET_PATH_H_

#include <sys/socket.h>
#include <sys/types.h>
#include <sys/un.h>

#include <string>
#include <string_view>
#include <vector>

#include "access.h"
#include "result.h"
#include "unique_fd.h"

namespace quiesce::control {

bool IsAbstract(std::string_view path);

// The directories where hosts put their sockets by default:
// $XDG_RUNTIME_DIR/quiesce (when xdg_runtime_dir is set and not empty),
// then /tmp/quiesce-<uid>.
std::vector<std::string> DefaultSocketDirs(const char* xdg_runtime_dir,
                                           uid_t uid);
// The first default directory, plus "/<pid>.sock".
std::string DefaultSocketPath(const char* xdg_runtime_dir, pid_t pid,
                              uid_t uid);

// A socket address and its length (an abstract name is counted by length).
struct UnixAddress {
  sockaddr_un addr;
  socklen_t len = 0;
};

// The address of a path or "@name"; kBadRequest when the name does not fit.
Result<UnixAddress> MakeAddress(std::string_view path);

// Connects a close-on-exec, non-blocking stream socket to `path`, retrying
// a full backlog until timeout_ms. Returns an invalid fd with errno set.
UniqueFd ConnectUnix(const std::string& path, int timeout_ms);

// The peer's credentials of a connected socket (SO_PEERCRED).
bool ReadPeerCreds(int fd, PeerCreds* creds);

// A listening socket and what is needed to remove it again.
struct Listener {
  UniqueFd fd;
  std::string path;
  dev_t dev = 0;  // the socket file's identity, so that shutdown unlinks
  ino_t ino = 0;  // only our own socket, never a successor's
};

// Creates (when create_dir) and checks the socket's directory, binds
// (replacing a stale socket), sets the mode and listens. The error says
// why, in words a host's log can show: kForbidden for a directory others
// could reach, kBusy for a live process's socket, kIoError for the rest.
Result<Listener> Listen(const std::string& path, bool create_dir);

// Closes the listener and unlinks its socket file if it is still ours.
void Unlisten(Listener* listener);

}  // namespace quiesce::control

#endif  // QUIESCE_CONTROL_SOCKET_PATH_H_
