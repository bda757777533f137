// The library's exported entry points: the C API of quiesce.h and the
// loadable-extension entry point. Nothing thrown inside may cross them.
#include <pthread.h>
#include <unistd.h>

#include <mutex>

#include <cstdlib>
#include <string>

#include "../control/server.h"
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

void StartServer(const Config& config) {
  if (!config.socket) return;
  static std::once_flag atfork_once;
  std::call_once(atfork_once, [] {
    pthread_atfork(LockBeforeFork, UnlockInParent, ForgetServerInChild);
  });
  MutexLock lock(&g_server_mu);
  if (g_server != nullptr) return;
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
  std::string error;
  g_server = control::Server::Start(context, std::move(options), &error)
                 .release();
  if (g_server == nullptr) {
    context->api().log(SQLITE_CANTOPEN,
                       "quiesce: control server not started: %s",
                       error.c_str());
  }
}

int Register(const Config& config, const SqliteApi& api, std::string* error) {
  Context* context = Context::GetOrCreate(config, api);
  return RegisterShim(context, config.base_vfs, config.vfs_name,
                      config.make_default, error);
}

}  // namespace
}  // namespace quiesce

extern "C" {

__attribute__((visibility("default"))) int quiesce_register(
    const quiesce_config* c) {
  using namespace quiesce;
  try {
    Config config;
    std::string error;
    if (!ConfigFromC(c, &config, &error)) return SQLITE_MISUSE;
    SqliteApi api;
    if (Context* existing = Context::Get()) {
      api = existing->api();
    } else if (!LoadSqliteApi(config.resolve, config.resolve_arg, &api,
                              &error)) {
      return SQLITE_ERROR;  // no SQLite to log to: the symbols are missing
    }
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
    Config config;
    std::string error;
    int rc = SQLITE_ERROR;
    if (ConfigFromEnv(std::getenv, &config, &error)) {
      rc = Register(config, Context::Get() ? Context::Get()->api() : api,
                    &error);
    }
    if (rc != SQLITE_OK) {
      if (error_out) *error_out = api.mprintf("quiesce: %s", error.c_str());
      return rc;
    }
    StartServer(config);
    // The VFS must outlive this call: SQLite must never unload us.
    return SQLITE_OK_LOAD_PERMANENTLY;
  } catch (...) {
    return SQLITE_NOMEM;
  }
}

}  // extern "C"
