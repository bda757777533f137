// Registration of the shim's VFS over a base VFS.
#ifndef QUIESCE_VFS_SHIM_VFS_H_
#define QUIESCE_VFS_SHIM_VFS_H_

#include <string>

#include "context.h"

namespace quiesce {

// Wraps the VFS named base_name (empty: the default) and registers the shim
// as vfs_name. Idempotent: a name we already registered returns SQLITE_OK.
// Returns a SQLite result code; on failure *error says why.
int RegisterShim(Context* context, const std::string& base_name,
                 const std::string& vfs_name, bool make_default,
                 std::string* error);

// Wraps the registered VFS vfs_name in place (quiesce_attach): its xOpen
// and xDelete lead to the shim from now on, which calls a copy of the VFS
// as it was; its identity, its szOsFile and its other methods stay, so
// layers built over it before keep working and open through the shim.
// Files opened before are not touched (untracked.h). *already is set when
// vfs_name is ours already (attached before, or registered by
// RegisterShim). Returns a SQLite result code; on failure *error says why.
int AttachShim(Context* context, const std::string& vfs_name, bool* already,
               std::string* error);

// Whether vfs is one of our shims.
bool IsShim(const sqlite3_vfs* vfs);

}  // namespace quiesce

#endif  // QUIESCE_VFS_SHIM_VFS_H_
