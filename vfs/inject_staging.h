// What `quiescectl bundle inject` stages, and how what a dead injection
// left is cleaned up: by quiescectl (tools/quiescectl/bundle_staging.h) and
// by the shim when the host opens the origin's caches.sqlite after a crash
// (staging_recovery.h). docs/bundles.md, "Crashes"; docs/gecko.md, "Orphan
// bodies", says why orphans in morgue/ must not outlive a crash.
//
// An injection stages its bodies in
// `<profile>/quiesce-staging/inject-<pid>-XXXXXX/`, outside the origin's
// storage, and writes there a manifest listing the cache directory and the
// body ids, synced before any body moves into morgue/.
#ifndef QUIESCE_VFS_INJECT_STAGING_H_
#define QUIESCE_VFS_INJECT_STAGING_H_

#include <filesystem>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace quiesce {

inline constexpr char kInjectStagingPrefix[] = "inject-";
inline constexpr char kStagingManifestName[] = "manifest";

// Where quiesce keeps files of its own next to a cache directory, on the
// same filesystem: `<profile>/quiesce-staging` for Gecko's layout
// (<profile>/storage/<type>/<origin>/cache), else the cache directory's
// grandparent's `quiesce-staging` (outside the origin's directory).
std::filesystem::path StagingRoot(const std::filesystem::path& cache_dir);

// Whether a staging directory's name is an injection's whose process is
// gone (its pid, in the name, no longer runs).
bool IsDeadInjection(std::string_view dir_name);

struct StagingManifest {
  std::string cache_dir;
  std::vector<std::string> body_ids;
};

// The manifest's text: a header line, "cache_dir <path>", then one body
// id a line.
std::string FormatStagingManifest(const StagingManifest& manifest);
// nullopt for text that is not a manifest (a wrong header, a line that is
// not a body id, a cache directory with a newline).
std::optional<StagingManifest> ParseStagingManifest(std::string_view text);
// Reads and parses `dir`/manifest; nullopt if there is none or it does not
// parse.
std::optional<StagingManifest> ReadStagingManifest(
    const std::filesystem::path& dir);

// Whether a dead injection left a staging directory for this cache
// directory (or one whose manifest names no cache directory).
bool NeedsRecovery(const std::filesystem::path& cache_dir);

struct Recovery {
  int directories = 0;     // staging directories of dead processes removed
  int bodies_removed = 0;  // unreferenced staged bodies taken out of morgue/
  int bodies_kept = 0;     // staged bodies that a committed row references
};

// Cleans up what dead injections into `cache_dir` left: each listed body
// that no row references (`referenced_ids`, read after any injection of
// theirs ended) is removed from morgue/, then the staging directory. A
// directory without a manifest moved nothing and just goes. Directories
// of other cache directories are left for their own origin's recovery.
Recovery RecoverStaging(const std::filesystem::path& cache_dir,
                        const std::set<std::string>& referenced_ids);

}  // namespace quiesce

#endif  // QUIESCE_VFS_INJECT_STAGING_H_
