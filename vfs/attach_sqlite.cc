#include "attach_sqlite.h"

#include <dlfcn.h>
#include <link.h>

#include <cstring>
#include <string_view>
#include <vector>

namespace quiesce {
namespace {

constexpr char kProbe[] = "sqlite3_vfs_find";

void* FromHandle(void* handle, const char* symbol) {
  return dlsym(handle, symbol);
}

void* FromGlobalScope(void*, const char* symbol) {
  return dlsym(RTLD_DEFAULT, symbol);
}

std::string DefiningFile(void* symbol) {
  Dl_info info{};
  if (symbol == nullptr || dladdr(symbol, &info) == 0 ||
      info.dli_fname == nullptr) {
    return "";
  }
  return info.dli_fname;
}

bool Known(std::string_view base) {
  return base == "libmozsqlite3.so" || base == "libnss3.so" ||
         base.rfind("libsqlite3.so", 0) == 0;
}

int CollectObjects(dl_phdr_info* info, size_t, void* data) {
  auto* names = static_cast<std::vector<std::string>*>(data);
  if (info->dlpi_name == nullptr || *info->dlpi_name == '\0') return 0;
  std::string_view path(info->dlpi_name);
  const size_t slash = path.rfind('/');
  if (Known(slash == std::string_view::npos ? path : path.substr(slash + 1))) {
    names->emplace_back(path);
  }
  return 0;
}

}  // namespace

Result<HostSqlite> FindHostSqlite(quiesce_resolver resolve, void* resolve_arg,
                                  void* library_handle) {
  HostSqlite out;
  if (resolve != nullptr) {
    out.resolve = resolve;
    out.arg = resolve_arg;
    out.library = DefiningFile(resolve(resolve_arg, kProbe));
    return out;
  }
  if (library_handle != nullptr) {
    void* probe = dlsym(library_handle, kProbe);
    if (probe == nullptr) {
      return Error{ErrorCode::kNotFound,
                   "the library handle given does not define "
                   "sqlite3_vfs_find"};
    }
    out.resolve = FromHandle;
    out.arg = library_handle;
    out.library = DefiningFile(probe);
    return out;
  }
  if (void* probe = dlsym(RTLD_DEFAULT, kProbe)) {
    out.resolve = FromGlobalScope;
    out.arg = nullptr;
    out.library = DefiningFile(probe);
    return out;
  }
  std::vector<std::string> candidates;
  dl_iterate_phdr(CollectObjects, &candidates);
  for (const std::string& path : candidates) {
    // Loaded already: NOLOAD only takes a reference, kept for good (the
    // library must outlive the shim's function table).
    void* handle = dlopen(path.c_str(), RTLD_LAZY | RTLD_NOLOAD);
    if (handle == nullptr) continue;
    void* probe = dlsym(handle, kProbe);
    // Defined by that very object, not by one of its dependencies.
    if (probe != nullptr && DefiningFile(probe) == path) {
      out.resolve = FromHandle;
      out.arg = handle;
      out.library = path;
      return out;
    }
    dlclose(handle);
  }
  return Error{
      ErrorCode::kNotFound,
      "no SQLite found: sqlite3_vfs_find is not in the global symbol scope "
      "and no libmozsqlite3.so, libnss3.so or libsqlite3.so defining it is "
      "loaded (pass the library's dlopen handle in "
      "quiesce_attach_config.sqlite_library)"};
}

}  // namespace quiesce
