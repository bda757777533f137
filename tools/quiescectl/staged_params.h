// The staged database that carries an injection's blobs: a request carries
// at most a few descriptors (control::kMaxRequestFds), so the blobs of a
// bundle's plan travel in one attached file instead, in the table the host
// binds parameters from (inject's params_from_attachment).
#ifndef QUIESCE_TOOLS_QUIESCECTL_STAGED_PARAMS_H_
#define QUIESCE_TOOLS_QUIESCECTL_STAGED_PARAMS_H_

#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"

namespace quiesce::ctl {

// Writes a new standalone SQLite file `path` (rollback journal, so the host
// can attach it read-only and immutable) with the table
// quiesce_params(name TEXT PRIMARY KEY, value BLOB), one row per blob.
// Names may carry SQL's parameter prefix (":p1"); the table holds them
// without it ("p1"), as the host looks them up.
absl::Status WriteStagedParams(
    const std::vector<std::pair<std::string, std::string>>& blobs,
    const std::filesystem::path& path);

}  // namespace quiesce::ctl

#endif  // QUIESCE_TOOLS_QUIESCECTL_STAGED_PARAMS_H_
