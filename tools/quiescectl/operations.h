// Client-side operations that move data: a snapshot into a file, a hold
// around a command, an injection from files. Shared by quiescectl's
// commands and its bundle commands. Not for use inside the host.
#ifndef QUIESCE_TOOLS_QUIESCECTL_OPERATIONS_H_
#define QUIESCE_TOOLS_QUIESCECTL_OPERATIONS_H_

#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "client.h"

namespace quiesce::ctl {

using control::json;

// What went wrong, and the exit code quiescectl should end with.
struct Failure {
  int exit_code = 1;
  std::string message;
};

// Writes a consistent image of `db` to `path` (through path + ".part",
// renamed when whole), checks the SHA-256 the host reported against the
// file, and with `verify` runs integrity_check on it. `progress` is called
// with pages done and in all.
bool SnapshotToFile(control::Client& client, const json& db,
                    const std::string& path, bool verify,
                    const std::function<void(uint64_t, uint64_t)>& progress,
                    json* result, Failure* failure);

struct InjectFiles {
  std::string sql_path;  // "-": standard input
  std::vector<std::pair<std::string, std::string>> params;  // name, file
  std::optional<std::pair<std::string, std::string>> attach;  // name, file
  bool params_from_attachment = false;
  bool dry_run = false;
  bool readers_may_proceed = false;
  // Run inside this session's hold of that request id (its quiescent
  // point) instead of reaching one of its own.
  std::optional<int64_t> hold;
};

bool InjectFromFiles(control::Client& client, const json& db,
                     const InjectFiles& files, json* result,
                     Failure* failure);

// Holds a quiescent point on `db` while `argv` runs (with the hold's
// details in QUIESCE_HOLD_* variables), then releases it. *child_status is
// the command's exit status; the lease must have stayed intact.
bool HoldAround(control::Client& client, const json& db, long lease_ms,
                const std::vector<std::string>& argv, json* result,
                int* child_status, Failure* failure);

// The SHA-256 of a file, hex.
bool FileSha256(const std::string& path, std::string* hex);

}  // namespace quiesce::ctl

#endif  // QUIESCE_TOOLS_QUIESCECTL_OPERATIONS_H_
