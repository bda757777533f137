// The library's exported entry points: the C API of quiesce.h and the
// loadable-extension entry point. Nothing thrown inside may cross them.
#include <pthread.h>
#include <unistd.h>

#include <mutex>

#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "server.h"
#include "attach_sqlite.h"
#include "config.h"
#include "context.h"
#include "quiesce/quiesce.h"
#include "shim_vfs.h"
#include "sqlite_api.h"

namespace quiesce {
namespace {

// The control server, when the host asked for one: at most one per process.
// A plain pointer, so that nothing joins a thread in the host's exit path;
// quiesce_shutdown stops it.
Mutex g_server_mu;
control::Server* g_server QUIESCE_GUARDED_BY(g_server_mu) = nullptr;

// Starts the control server when `config` names a socket and none runs.
// One that cannot start leaves the shim registered and working, and says
// why in the host's SQLite log.
// fork() copies the server's pointer but not its thread: the child must
// neither join nor unlink anything of the parent's. The handlers keep the
// server's mutex consistent across fork and, in the child, forget the
// server (leaking its memory, closing only the listener and wake-up
// descriptors; session sockets are CLOEXEC and go with an exec).
void LockBeforeFork() QUIESCE_NO_TSA { g_server_mu.Lock(); }
void UnlockInParent() QUIESCE_NO_TSA { g_server_mu.Unlock(); }
void ForgetServerInChild() QUIESCE_NO_TSA {
  if (g_server != nullptr) {
    if (Context* context = Context::Get()) context->SetCommitObserver(nullptr);
    g_server->AbandonAfterFork();
    g_server = nullptr;
  }
  g_server_mu.Unlock();
}

// Starts the server when `config` names a socket; returns its path, or ""
// when none runs.
std::string StartServer(const Config& config) {
  if (!config.socket) return "";
  static std::once_flag atfork_once;
  std::call_once(atfork_once, [] {
    pthread_atfork(LockBeforeFork, UnlockInParent, ForgetServerInChild);
  });
  MutexLock lock(&g_server_mu);
  if (g_server != nullptr) return g_server->socket();
  Context* context = Context::Get();
  control::ServerOptions options;
  options.create_dir = config.socket->empty();
  if (options.create_dir) {
    // Read at registration, like the rest of the environment
    // (ConfigFromEnv): getenv races only with a setenv on another thread,
    // which would race with SQLite's own getenv calls as much.
    // NOLINTNEXTLINE(concurrency-mt-unsafe)
    const char* runtime_dir = std::getenv("XDG_RUNTIME_DIR");
    options.socket =
        control::DefaultSocketPath(runtime_dir, getpid(), geteuid());
  } else {
    options.socket = *config.socket;
  }
  options.policy = {geteuid(), config.allow_uids, config.writable};
  Result<std::unique_ptr<control::Server>> server =
      control::Server::Start(context, std::move(options));
  if (!server.ok()) {
    context->api().log(SQLITE_CANTOPEN,
                       "quiesce: control server not started: %s",
                       server.error().message.c_str());
    return "";
  }
  g_server = server.value().release();
  return g_server->socket();
}

int Register(const Config& config, const SqliteApi& api, std::string* error) {
  Context* context = Context::GetOrCreate(config, api);
  return RegisterShim(context, config.base_vfs, config.vfs_name,
                      config.make_default, error);
}

// quiesce_attach's state: the attach that took effect, reported to every
// later call.
struct AttachState {
  bool done = false;  // an attach succeeded: later calls are no-ops
  int result = SQLITE_OK;
  std::vector<std::string> vfs_names;
  std::string library;
  std::string socket;
  std::string message;
};
Mutex g_attach_mu;
AttachState g_attach QUIESCE_GUARDED_BY(g_attach_mu);

void CopyText(char* out, size_t size, const std::string& text) {
  if (size == 0) return;
  const size_t n = std::min(size - 1, text.size());
  std::memcpy(out, text.data(), n);
  out[n] = '\0';
}

void Report(const AttachState& state, bool already,
            quiesce_attach_report* report) {
  if (report == nullptr || report->size < sizeof(quiesce_attach_report)) {
    return;
  }
  report->result = state.result;
  report->already_attached = already ? 1 : 0;
  report->vfs_count = static_cast<int>(state.vfs_names.size());
  std::string names;
  for (const std::string& n : state.vfs_names) {
    names += (names.empty() ? "" : ",") + n;
  }
  CopyText(report->vfs_names, sizeof(report->vfs_names), names);
  CopyText(report->sqlite_library, sizeof(report->sqlite_library),
           state.library);
  CopyText(report->socket_path, sizeof(report->socket_path), state.socket);
  CopyText(report->message, sizeof(report->message), state.message);
}

// The attach config as a registration config, for one validation.
quiesce_config AsRegisterConfig(const quiesce_attach_config& full) {
  quiesce_config c{};
  c.size = sizeof(c);
  c.socket_path = full.socket_path;
  c.max_stall_ms = full.max_stall_ms;
  c.lease_ms = full.lease_ms;
  c.allow_uids = full.allow_uids;
  c.writable = full.writable;
  c.allow_ddl = full.allow_ddl;
  return c;
}

AttachState Attach(const quiesce_attach_config* c) QUIESCE_REQUIRES(g_attach_mu) {
  AttachState state;
  auto fail = [&state](int rc, std::string message) {
    state.result = rc;
    state.message = std::move(message);
    return state;
  };
  Config config;
  std::string error;
  quiesce_attach_config full{};
  if (c != nullptr) {
    if (c->size < offsetof(quiesce_attach_config, report)) {
      return fail(SQLITE_MISUSE, "quiesce_attach_config.size is not set");
    }
    std::memcpy(&full, c, std::min(c->size, sizeof(full)));
    const quiesce_config as_register = AsRegisterConfig(full);
    auto checked = ConfigFromC(&as_register);
    if (!checked.ok()) return fail(SQLITE_MISUSE, checked.error().message);
    config = std::move(checked.value());
  } else {
    auto from_env = ConfigFromEnv(std::getenv);
    if (!from_env.ok()) return fail(SQLITE_MISUSE, from_env.error().message);
    config = std::move(from_env.value());
  }
  SqliteApi api;
  if (Context* existing = Context::Get()) {
    api = existing->api();
  } else {
    const Result<HostSqlite> host =
        FindHostSqlite(full.resolve, full.resolve_arg, full.sqlite_library);
    if (!host.ok()) return fail(SQLITE_NOTFOUND, host.error().message);
    state.library = host.value().library;
    Result<SqliteApi> loaded =
        LoadSqliteApi(host.value().resolve, host.value().arg);
    if (!loaded.ok()) {
      return fail(SQLITE_ERROR, "the SQLite found (" + state.library + ") " +
                                    loaded.error().message);
    }
    api = loaded.value();
  }
  Context* context = Context::GetOrCreate(config, api);
  const bool named = full.vfs_names != nullptr;
  std::vector<std::string> names;
  if (named) {
    for (const char* const* n = full.vfs_names; *n != nullptr; ++n) {
      names.emplace_back(*n);
    }
  } else {
    names = {"unix", "unix-excl", "unix-none", "unix-dotfile"};
  }
  // Before any file opens through the shim: nothing is vouched for by a
  // registration any more.
  context->SetAttached();
  int result = SQLITE_OK;
  for (const std::string& name : names) {
    bool already = false;
    const int rc = AttachShim(context, name, &already, &error);
    if (rc == SQLITE_OK) {
      state.vfs_names.push_back(name);
    } else if (rc == SQLITE_NOTFOUND && !named) {
      continue;  // a default this SQLite was built without
    } else {
      result = rc;
      state.message += (state.message.empty() ? "" : "; ") + error;
    }
  }
  if (state.vfs_names.empty() && result == SQLITE_OK) {
    result = SQLITE_NOTFOUND;
    state.message = "none of the VFSes to attach to is registered";
  }
  state.result = result;
  if (result != SQLITE_OK) {
    api.log(result, "quiesce: attach failed: %s", state.message.c_str());
    return state;
  }
  state.socket = StartServer(config);
  if (config.socket && state.socket.empty()) {
    state.message = "attached, but the control server did not start (see "
                    "the SQLite log)";
  }
  state.done = true;
  return state;
}

}  // namespace
}  // namespace quiesce

extern "C" {

__attribute__((visibility("default"))) int quiesce_attach(
    const quiesce_attach_config* c) {
  using namespace quiesce;
  try {
    quiesce_attach_report* report =
        c != nullptr && c->size >= sizeof(quiesce_attach_config) ? c->report
                                                                  : nullptr;
    MutexLock lock(&g_attach_mu);
    if (g_attach.done) {
      Report(g_attach, /*already=*/true, report);
      return g_attach.result;
    }
    AttachState state = Attach(c);
    Report(state, /*already=*/false, report);
    const int result = state.result;
    if (state.done) g_attach = std::move(state);  // a failed attach may retry
    return result;
  } catch (...) {
    return SQLITE_NOMEM;
  }
}

__attribute__((visibility("default"))) int quiesce_register(
    const quiesce_config* c) {
  using namespace quiesce;
  try {
    auto checked = ConfigFromC(c);
    if (!checked.ok()) return SQLITE_MISUSE;
    const Config& config = checked.value();
    SqliteApi api;
    if (Context* existing = Context::Get()) {
      api = existing->api();
    } else {
      Result<SqliteApi> loaded =
          LoadSqliteApi(config.resolve, config.resolve_arg);
      // No SQLite to log to: the symbols are missing.
      if (!loaded.ok()) return SQLITE_ERROR;
      api = loaded.value();
    }
    std::string error;
    const int rc = Register(config, api, &error);
    if (rc != SQLITE_OK) {
      api.log(rc, "quiesce: registering '%s' failed: %s",
              config.vfs_name.c_str(), error.c_str());
    } else {
      StartServer(config);
    }
    return rc;
  } catch (...) {
    return SQLITE_NOMEM;
  }
}

__attribute__((visibility("default"))) void quiesce_shutdown(void) {
  using namespace quiesce;
  try {
    MutexLock lock(&g_server_mu);
    delete g_server;  // stops and joins the thread, unlinks the socket
    g_server = nullptr;
  } catch (...) {
    // Nothing may cross into the host.
  }
}

__attribute__((visibility("default"))) int sqlite3_quiesce_init(
    sqlite3*, char** error_out, const sqlite3_api_routines* routines) {
  using namespace quiesce;
  SqliteApi api;
  LoadSqliteApiFromExtension(routines, &api);
  try {
    auto from_env = ConfigFromEnv(std::getenv);
    std::string error;
    int rc = SQLITE_ERROR;
    if (!from_env.ok()) {
      error = from_env.error().message;
    } else {
      rc = Register(from_env.value(),
                    Context::Get() ? Context::Get()->api() : api, &error);
    }
    if (rc != SQLITE_OK) {
      if (error_out) *error_out = api.mprintf("quiesce: %s", error.c_str());
      return rc;
    }
    StartServer(from_env.value());
    // The VFS must outlive this call: SQLite must never unload us.
    return SQLITE_OK_LOAD_PERMANENTLY;
  } catch (...) {
    return SQLITE_NOMEM;
  }
}

}  // extern "C"
