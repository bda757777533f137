// The LD_PRELOAD library for a stock Firefox (or any program that uses a
// shared SQLite): its only exported symbol is sqlite3_initialize, which the
// host's versioned references bind to. It calls the real one and, on the
// outermost call into the host SQLite, installs the shim (install.h).
//
// Programs that merely inherit LD_PRELOAD (Firefox's helpers and whatever
// they run) get this library mapped and nothing else: it has no
// constructor, and without a call to sqlite3_initialize it does nothing.
#include "install.h"
#include "sqlite_objects.h"

namespace {

// Depth of sqlite3_initialize calls into the host SQLite on this thread.
// SQLite re-enters it (its own PLT calls during initialization, and the
// shim's sqlite3_vfs_find while installing): only depth 1 installs.
thread_local int t_depth = 0;

constexpr int kSqliteOk = 0;
constexpr int kSqliteError = 1;

}  // namespace

extern "C" __attribute__((visibility("default"))) int sqlite3_initialize(
    void) {
  using namespace quiesce::preload;
  const InitializeTarget target = TargetFor(__builtin_return_address(0));
  if (target.initialize == nullptr) return kSqliteError;
  if (!target.is_host || Installed()) return target.initialize();
  ++t_depth;
  const int rc = target.initialize();
  if (rc == kSqliteOk && t_depth == 1) InstallOnce();
  --t_depth;
  return rc;
}
