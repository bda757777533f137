#include "install.h"

#include <pthread.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "config.h"
#include "mutex.h"
#include "process_role.h"
#include "quiesce/quiesce.h"
#include "sqlite_objects.h"

namespace quiesce::preload {
namespace {

constexpr char kExclOverUnixVar[] = "QUIESCE_PRELOAD_EXCL_OVER_UNIX";

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

// Returns false when the host SQLite is not ready yet, to be tried again on
// a later call; true once installed or decided against.
bool Install() {
  const bool android_path = AndroidPath();
  if (!BaseVfsesRegistered(android_path)) return false;
  if (IsContentProcess()) return true;
  Config config;
  std::string error;
  if (!ConfigFromEnv(std::getenv, &config, &error)) {
    Report(error + "; the shim is not installed");
    return true;
  }
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
