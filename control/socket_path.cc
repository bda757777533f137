#include "socket_path.h"

#include <errno.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <thread>

#include "errno_text.h"

namespace quiesce::control {
namespace {

// Connections the kernel queues before the server accepts them: above the
// server's connection cap (ServerLimits::max_connections, 64), so that a
// burst of clients up to the cap is accepted, and the ones past it get the
// server's "busy" line rather than a connect that hangs or fails with
// EAGAIN.
constexpr int kBacklog = 128;
// How long the stale-socket probe waits for an answer.
constexpr int kProbeTimeoutMs = 200;

Error Errno(ErrorCode code, const std::string& what) {
  return Error{code, what + ": " + ErrnoText(errno)};
}

std::string DirName(const std::string& path) {
  const size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

// The socket's directory must be a real directory owned by us, closed to
// everyone else: that, not the socket's own mode, is what keeps other
// users from connecting or swapping the socket.
Result<Ok> CheckDir(const std::string& dir, bool create) {
  if (create && mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return Errno(ErrorCode::kIoError, "cannot create " + dir);
  }
  struct stat st;
  if (lstat(dir.c_str(), &st) != 0) {
    return Errno(ErrorCode::kIoError, "cannot inspect " + dir);
  }
  if (!S_ISDIR(st.st_mode)) {
    return Error{ErrorCode::kBadRequest, dir + " is not a directory"};
  }
  if (st.st_uid != geteuid()) {
    return Error{ErrorCode::kForbidden,
                 dir + " is owned by uid " + std::to_string(st.st_uid) +
                     ", not by this process's uid " +
                     std::to_string(geteuid())};
  }
  if ((st.st_mode & 077) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof(mode), "%03o", st.st_mode & 0777);
    return Error{ErrorCode::kForbidden,
                 dir + " has mode " + mode +
                     ": other users could reach the socket; it must be 0700"};
  }
  return Ok{};
}

int BindTo(int fd, const UnixAddress& address) {
  return bind(fd, reinterpret_cast<const sockaddr*>(&address.addr),
              address.len) == 0
             ? 0
             : errno;
}

}  // namespace

bool IsAbstract(std::string_view path) {
  return !path.empty() && path[0] == '@';
}

std::vector<std::string> DefaultSocketDirs(const char* xdg_runtime_dir,
                                           uid_t uid) {
  std::vector<std::string> dirs;
  if (xdg_runtime_dir != nullptr && *xdg_runtime_dir != '\0') {
    dirs.push_back(std::string(xdg_runtime_dir) + "/quiesce");
  }
  dirs.push_back("/tmp/quiesce-" + std::to_string(uid));
  return dirs;
}

std::string DefaultSocketPath(const char* xdg_runtime_dir, pid_t pid,
                              uid_t uid) {
  return DefaultSocketDirs(xdg_runtime_dir, uid).front() + "/" +
         std::to_string(pid) + ".sock";
}

Result<UnixAddress> MakeAddress(std::string_view path) {
  UnixAddress out;
  sockaddr_un* addr = &out.addr;
  std::memset(addr, 0, sizeof(*addr));
  addr->sun_family = AF_UNIX;
  // A path needs its terminating NUL; an abstract name is counted by
  // length, its leading NUL standing for the '@'.
  if (path.size() < 2 && IsAbstract(path)) {
    return Error{ErrorCode::kBadRequest,
                 "an abstract socket name needs a name after '@'"};
  }
  if (path.empty() || path.size() >= sizeof(addr->sun_path)) {
    return Error{ErrorCode::kBadRequest,
                 "socket path must be 1 to " +
                     std::to_string(sizeof(addr->sun_path) - 1) +
                     " bytes long"};
  }
  std::memcpy(addr->sun_path, path.data(), path.size());
  if (IsAbstract(path)) {
    addr->sun_path[0] = '\0';
    out.len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) +
                                     path.size());
  } else {
    out.len = static_cast<socklen_t>(sizeof(*addr));
  }
  return out;
}

UniqueFd ConnectUnix(const std::string& path, int timeout_ms) {
  const Result<UnixAddress> address = MakeAddress(path);
  if (!address.ok()) {
    errno = ENAMETOOLONG;
    return UniqueFd();
  }
  const auto deadline = std::chrono::steady_clock::now() +
                        std::chrono::milliseconds(timeout_ms);
  for (;;) {
    UniqueFd fd(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (!fd) return fd;
    if (connect(fd.get(),
                reinterpret_cast<const sockaddr*>(&address.value().addr),
                address.value().len) == 0) {
      return fd;
    }
    // EAGAIN: the listener's backlog is full; anything else is final.
    if (errno != EAGAIN && errno != EINTR) return UniqueFd();
    if (std::chrono::steady_clock::now() >= deadline) {
      errno = ETIMEDOUT;
      return UniqueFd();
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

bool ReadPeerCreds(int fd, PeerCreds* creds) {
  ucred cred{};
  socklen_t len = sizeof(cred);
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) return false;
  creds->pid = cred.pid;
  creds->uid = cred.uid;
  creds->gid = cred.gid;
  return true;
}

Result<Listener> Listen(const std::string& path, bool create_dir) {
  const Result<UnixAddress> address = MakeAddress(path);
  if (!address.ok()) return address.error();
  const bool abstract = IsAbstract(path);
  if (!abstract) {
    if (Result<Ok> dir = CheckDir(DirName(path), create_dir); !dir.ok()) {
      return dir.error();
    }
  }
  UniqueFd fd(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd) return Errno(ErrorCode::kIoError, "socket");
  int err = BindTo(fd.get(), address.value());
  if (err == EADDRINUSE && !abstract) {
    // Someone's socket file. Unlink it only when nothing answers there:
    // a dead host's leftover; a live host keeps its socket.
    UniqueFd probe = ConnectUnix(path, kProbeTimeoutMs);
    const int probe_err = errno;
    struct stat st;
    if (probe) {
      return Error{ErrorCode::kBusy,
                   path + " is served by a live process; not replacing it"};
    }
    if (probe_err != ECONNREFUSED || lstat(path.c_str(), &st) != 0 ||
        !S_ISSOCK(st.st_mode)) {
      errno = probe_err;
      return Errno(ErrorCode::kBusy,
                   path + " exists and is not a stale socket");
    }
    if (unlink(path.c_str()) != 0) {
      return Errno(ErrorCode::kIoError,
                   "cannot remove the stale socket " + path);
    }
    err = BindTo(fd.get(), address.value());
  }
  if (err != 0) {
    errno = err;
    return Errno(ErrorCode::kIoError, "cannot bind " + path);
  }
  struct stat st{};
  if (!abstract) {
    if (chmod(path.c_str(), 0600) != 0 || lstat(path.c_str(), &st) != 0) {
      Error error = Errno(ErrorCode::kIoError, "cannot set the mode of " + path);
      unlink(path.c_str());
      return error;
    }
  }
  if (listen(fd.get(), kBacklog) != 0) {
    Error error = Errno(ErrorCode::kIoError, "listen on " + path);
    if (!abstract) unlink(path.c_str());
    return error;
  }
  Listener out;
  out.fd = std::move(fd);
  out.path = path;
  out.dev = st.st_dev;
  out.ino = st.st_ino;
  return out;
}

void Unlisten(Listener* listener) {
  if (!listener->fd) return;
  if (!IsAbstract(listener->path)) {
    struct stat st;
    if (lstat(listener->path.c_str(), &st) == 0 &&
        st.st_dev == listener->dev && st.st_ino == listener->ino) {
      unlink(listener->path.c_str());
    }
  }
  listener->fd.reset();
}

}  // namespace quiesce::control
