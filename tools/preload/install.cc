#include "install.h"

#include <fcntl.h>
#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>

#include "config.h"
#include "errno_text.h"
#include "mutex.h"
#include "process_role.h"
#include "quiesce/quiesce.h"
#include "sqlite_objects.h"

namespace quiesce::preload {
namespace {

constexpr char kExclOverUnixVar[] = "QUIESCE_PRELOAD_EXCL_OVER_UNIX";
constexpr char kAttachFifoVar[] = "QUIESCE_PRELOAD_ATTACH_FIFO";

std::atomic<bool> g_installed{false};
std::atomic<bool> g_atfork_registered{false};
Mutex g_install_mu;

// A fork waits for an installation in progress; both sides then go on with
// the lock free. Without this a child forked mid-installation would find
// the lock held by a thread it does not have.
void BeforeFork() QUIESCE_NO_TSA { g_install_mu.Lock(); }
void AfterFork() QUIESCE_NO_TSA { g_install_mu.Unlock(); }

void Report(const std::string& message) {
  using LogFn = void (*)(int, const char*, ...);
  if (auto log = reinterpret_cast<LogFn>(HostSymbol(nullptr, "sqlite3_log"))) {
    log(1 /* SQLITE_ERROR */, "quiesce preload: %s", message.c_str());
  }
  std::fprintf(stderr, "quiesce preload: %s\n", message.c_str());
}

std::string JoinUids(const std::vector<uid_t>& uids) {
  std::string out;
  for (uid_t uid : uids) {
    if (!out.empty()) out += ',';
    out += std::to_string(uid);
  }
  return out;
}

struct Registration {
  const char* name;  // the name the shim takes over
  const char* base;  // the real VFS it wraps
};

// Whether the host SQLite's own VFSes are all registered. They are not
// while its initialization is still running: a host that entered the real
// sqlite3_initialize without passing through the preload (through a
// library handle) reaches us first from inside it, from os_init's
// sqlite3_vfs_register calls.
bool BaseVfsesRegistered(bool android_path) {
  using FindFn = void* (*)(const char*);
  auto find = reinterpret_cast<FindFn>(HostSymbol(nullptr, "sqlite3_vfs_find"));
  return find != nullptr && find("unix") != nullptr &&
         (android_path || find("unix-excl") != nullptr);
}

bool AndroidPath() {
  // Read at install time, like the rest of the environment (ConfigFromEnv
  // in Install): getenv races only with a setenv on another thread, which
  // would race with SQLite's own getenv calls as much.
  // NOLINTNEXTLINE(concurrency-mt-unsafe)
  const char* value = std::getenv(kExclOverUnixVar);
  return value != nullptr && std::strcmp(value, "1") == 0;
}

// --- late mode: quiesce_attach when a line arrives on a FIFO ----------------

void WriteFile(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp";
  const int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
                      0600);
  if (fd < 0) return;
  const ssize_t n = write(fd, text.data(), text.size());
  close(fd);
  if (n == static_cast<ssize_t>(text.size())) rename(tmp.c_str(), path.c_str());
}

// Attaches as a GeckoView app would, long after SQLite started: the host's
// VFSes wrapped in place, configured by the environment table. Says what
// happened in <fifo>.done ("0 unix,unix-excl,... socket" or "<rc> why").
void AttachNow(const std::string& fifo) {
  auto from_env = ConfigFromEnv(std::getenv);
  if (!from_env.ok()) {
    const std::string& error = from_env.error().message;
    Report(error + "; not attached");
    WriteFile(fifo + ".done", "1 " + error + "\n");
    return;
  }
  const Config& config = from_env.value();
  const std::string allow_uids = JoinUids(config.allow_uids);
  quiesce_attach_report report{};
  report.size = sizeof(report);
  quiesce_attach_config c{};
  c.size = sizeof(c);
  c.resolve = HostSymbol;
  c.socket_path = config.socket ? config.socket->c_str() : nullptr;
  c.max_stall_ms = config.max_stall_ms;
  c.lease_ms = config.lease_ms;
  c.allow_uids = allow_uids.empty() ? nullptr : allow_uids.c_str();
  c.writable = config.writable.c_str();
  c.allow_ddl = config.allow_ddl ? 1 : 0;
  c.report = &report;
  const int rc = quiesce_attach(&c);
  const std::string line =
      std::to_string(rc) + " " +
      (rc == 0 ? std::string(report.vfs_names) + " " + report.socket_path
               : std::string(report.message));
  if (rc != 0) Report("attach failed: " + line);
  WriteFile(fifo + ".done", line + "\n");
}

// Waits on the FIFO on a thread of its own (blocked in open and read: no
// polling, nothing to wake), attaches at the first line, then removes the
// FIFO. A thread that never gets its line ends with the process.
void StartAttachTrigger(const std::string& fifo) {
  if (mkfifo(fifo.c_str(), 0600) != 0 && errno != EEXIST) {
    Report("late mode: cannot make the FIFO " + fifo + ": " +
           ErrnoText(errno));
    return;
  }
  std::thread([fifo] {
    try {
      int fd;
      do {
        fd = open(fifo.c_str(), O_RDONLY | O_CLOEXEC);
      } while (fd < 0 && errno == EINTR);
      if (fd < 0) return;
      char c = 0;
      ssize_t n;
      do {
        n = read(fd, &c, 1);
      } while (n < 0 && errno == EINTR);
      close(fd);
      unlink(fifo.c_str());
      AttachNow(fifo);
    } catch (...) {  // std::bad_alloc: the host goes on without the shim
    }
  }).detach();
}

std::string LateModeFifo() {
  // NOLINTNEXTLINE(concurrency-mt-unsafe): read at install, as the rest
  const char* value = std::getenv(kAttachFifoVar);
  return value != nullptr ? value : "";
}

// Returns false when the host SQLite is not ready yet, to be tried again on
// a later call; true once installed or decided against.
bool Install() {
  const bool android_path = AndroidPath();
  if (!BaseVfsesRegistered(android_path)) return false;
  if (IsContentProcess()) return true;
  if (const std::string fifo = LateModeFifo(); !fifo.empty()) {
    if (android_path) {
      Report(std::string(kExclOverUnixVar) + " has no effect in late mode");
    }
    StartAttachTrigger(fifo);
    return true;  // registers nothing now
  }
  auto from_env = ConfigFromEnv(std::getenv);
  if (!from_env.ok()) {
    Report(from_env.error().message + "; the shim is not installed");
    return true;
  }
  const Config& config = from_env.value();
  // "unix" first: it takes over the head of SQLite's list, the default.
  const Registration registrations[] = {
      {"unix", "unix"},
      {"unix-excl", android_path ? "unix" : "unix-excl"},
      {"unix-none", "unix-none"},
      {"unix-dotfile", "unix-dotfile"},
  };
  const std::string allow_uids = JoinUids(config.allow_uids);
  quiesce_config c{};
  c.size = sizeof(c);
  c.max_stall_ms = config.max_stall_ms;
  c.lease_ms = config.lease_ms;
  c.allow_uids = allow_uids.empty() ? nullptr : allow_uids.c_str();
  c.writable = config.writable.c_str();
  c.allow_ddl = config.allow_ddl ? 1 : 0;
  c.resolve = HostSymbol;
  // The first registration that names a socket starts the control server.
  c.socket_path = config.socket ? config.socket->c_str() : nullptr;
  for (const Registration& r : registrations) {
    c.vfs_name = r.name;
    c.base_vfs = r.base;
    if (const int rc = quiesce_register(&c); rc != 0) {
      Report(std::string("registering '") + r.name + "' over '" + r.base +
             "' failed with SQLite code " + std::to_string(rc));
    }
  }
  return true;
}

}  // namespace

bool Installed() { return g_installed.load(std::memory_order_acquire); }

void InstallOnce() {
  try {
    if (!g_atfork_registered.exchange(true)) {
      pthread_atfork(BeforeFork, AfterFork, AfterFork);
    }
    MutexLock lock(&g_install_mu);
    if (g_installed.load(std::memory_order_relaxed)) return;
    bool decided = true;
    try {
      decided = Install();
    } catch (...) {  // std::bad_alloc: the host goes on without the shim
      Report("out of memory; the shim is not fully installed");
    }
    if (decided) g_installed.store(true, std::memory_order_release);
  } catch (...) {  // std::system_error from the mutex: try again next call
  }
}

}  // namespace quiesce::preload
