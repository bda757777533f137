// The library's exported entry points: the C API of quiesce.h and the
// loadable-extension entry point. Nothing thrown inside may cross them.
#include <cstdlib>
#include <string>

#include "config.h"
#include "context.h"
#include "quiesce/quiesce.h"
#include "shim_vfs.h"
#include "sqlite_api.h"

namespace quiesce {
namespace {

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
    }
    return rc;
  } catch (...) {
    return SQLITE_NOMEM;
  }
}

__attribute__((visibility("default"))) void quiesce_shutdown(void) {}

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
    // The VFS must outlive this call: SQLite must never unload us.
    return SQLITE_OK_LOAD_PERMANENTLY;
  } catch (...) {
    return SQLITE_NOMEM;
  }
}

}  // extern "C"
