#include "sqlite_api.h"

#include <dlfcn.h>

namespace quiesce {
namespace {

void* DefaultResolve(void*, const char* symbol) {
  return dlsym(RTLD_DEFAULT, symbol);
}

}  // namespace

Result<SqliteApi> LoadSqliteApi(quiesce_resolver resolve, void* arg) {
  if (resolve == nullptr) resolve = DefaultResolve;
  SqliteApi loaded;
  std::string missing;
#define QUIESCE_API_RESOLVE(name)                        \
  loaded.name = reinterpret_cast<decltype(loaded.name)>( \
      resolve(arg, "sqlite3_" #name));                   \
  if (loaded.name == nullptr) {                          \
    if (!missing.empty()) missing.append(", ");          \
    missing.append("sqlite3_" #name);                    \
  }
  QUIESCE_SQLITE_FUNCTIONS(QUIESCE_API_RESOLVE)
#undef QUIESCE_API_RESOLVE
  if (!missing.empty()) {
    return Error{ErrorCode::kNotFound, "lacks " + missing};
  }
  return loaded;
}

void LoadSqliteApiFromExtension(const sqlite3_api_routines* routines,
                                SqliteApi* api) {
#define QUIESCE_API_FROM_ROUTINES(name) api->name = routines->name;
  QUIESCE_SQLITE_FUNCTIONS(QUIESCE_API_FROM_ROUTINES)
#undef QUIESCE_API_FROM_ROUTINES
}

std::vector<std::string> SqliteApiSymbols() {
  std::vector<std::string> names;
#define QUIESCE_API_NAME(name) names.push_back("sqlite3_" #name);
  QUIESCE_SQLITE_FUNCTIONS(QUIESCE_API_NAME)
#undef QUIESCE_API_NAME
  return names;
}

}  // namespace quiesce
