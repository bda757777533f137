// Registers the quiesce shim inside SQLite's own test programs (speedtest1,
// mptest). They are compiled with -Dsqlite3_open_v2=quiesce_program_open_v2,
// so the shim is registered at the program's first open: after the
// sqlite3_config() calls they make (which fail once SQLite is initialized,
// and registering initializes it), before any database is opened.
//
// The environment decides, through the shim's own parser (QUIESCE_* of
// DESIGN.md): when none of QUIESCE_VFS_NAME, QUIESCE_BASE_VFS and
// QUIESCE_DEFAULT is set, the program runs on the bare base VFS. The usual
// setting is QUIESCE_VFS_NAME=unix QUIESCE_DEFAULT=1: the shim takes over
// "unix" as the default VFS. mptest's child processes inherit it.
// QUIESCE_PROGRAM_ATTACH=1 attaches instead (quiesce_attach(NULL): the
// environment's configuration, "unix" and its siblings wrapped in place),
// for comparing the attached shim with the registered one.
#include <cstdio>
#include <cstdlib>
#include <string>

#include "config.h"
#include "quiesce/quiesce.h"
#include "sqlite_api.h"

namespace {

bool AttachWanted() {
  const char* v = std::getenv("QUIESCE_PROGRAM_ATTACH");
  return v != nullptr && std::string(v) == "1";
}

bool Wanted() {
  return AttachWanted() || std::getenv("QUIESCE_VFS_NAME") != nullptr ||
         std::getenv("QUIESCE_BASE_VFS") != nullptr ||
         std::getenv("QUIESCE_DEFAULT") != nullptr;
}

std::string JoinUids(const std::vector<uid_t>& uids) {
  std::string joined;
  for (uid_t uid : uids) {
    if (!joined.empty()) joined += ',';
    joined += std::to_string(uid);
  }
  return joined;
}

// Registers the shim as the environment says; exits on a bad setting, so a
// benchmark or a test never silently runs without it.
void RegisterFromEnv() {
  auto from_env = quiesce::ConfigFromEnv(std::getenv);
  if (!from_env.ok()) {
    std::fprintf(stderr, "quiesce: %s\n", from_env.error().message.c_str());
    std::exit(1);
  }
  const quiesce::Config& config = from_env.value();
  const std::string uids = JoinUids(config.allow_uids);
  quiesce_config c{};
  c.size = sizeof c;
  c.base_vfs = config.base_vfs.empty() ? nullptr : config.base_vfs.c_str();
  c.vfs_name = config.vfs_name.c_str();
  c.make_default = config.make_default ? 1 : 0;
  c.socket_path = config.socket ? config.socket->c_str() : nullptr;
  c.max_stall_ms = config.max_stall_ms;
  c.lease_ms = config.lease_ms;
  c.allow_uids = uids.empty() ? nullptr : uids.c_str();
  c.writable = config.writable.c_str();
  c.allow_ddl = config.allow_ddl ? 1 : 0;
  if (const int rc = quiesce_register(&c); rc != SQLITE_OK) {
    std::fprintf(stderr, "quiesce: registering '%s' failed: %s\n",
                 config.vfs_name.c_str(), sqlite3_errstr(rc));
    std::exit(1);
  }
}

}  // namespace

extern "C" int quiesce_program_open_v2(const char* filename, sqlite3** db,
                                       int flags, const char* vfs) {
  static const bool registered = [] {
    if (AttachWanted()) {
      if (const int rc = quiesce_attach(nullptr); rc != SQLITE_OK) {
        std::fprintf(stderr, "quiesce: attach failed: %s\n",
                     sqlite3_errstr(rc));
        std::exit(1);
      }
    } else if (Wanted()) {
      RegisterFromEnv();
    }
    return true;
  }();
  static_cast<void>(registered);
  return sqlite3_open_v2(filename, db, flags, vfs);
}
