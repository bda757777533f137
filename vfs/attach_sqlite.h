// Finding the host's SQLite for quiesce_attach, without linking one: the
// library that defines its symbols in this process.
#ifndef QUIESCE_VFS_ATTACH_SQLITE_H_
#define QUIESCE_VFS_ATTACH_SQLITE_H_

#include <string>

#include "quiesce/quiesce.h"
#include "result.h"

namespace quiesce {

struct HostSqlite {
  quiesce_resolver resolve = nullptr;
  void* arg = nullptr;
  std::string library;  // the file that defines sqlite3_vfs_find, or ""
};

// In this order: the caller's resolver; the caller's dlopen handle; the
// global symbol scope (dlsym(RTLD_DEFAULT)); a loaded libmozsqlite3.so,
// libnss3.so (Gecko on Android folds SQLite into NSS) or libsqlite3.so,
// found by dl_iterate_phdr. kNotFound, saying what was tried, when none
// defines sqlite3_vfs_find.
Result<HostSqlite> FindHostSqlite(quiesce_resolver resolve, void* resolve_arg,
                                  void* library_handle);

}  // namespace quiesce

#endif  // QUIESCE_VFS_ATTACH_SQLITE_H_
