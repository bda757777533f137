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

#include <cstdint>
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
  // The id of the new cache the injection fills before it publishes it (0:
  // none, an overwrite). Until published it is an orphaned cache, with rows
  // that reference the bodies below.
  int64_t fill_cache_id = 0;
  // The injection's own bodies, staged and moved into morgue/.
  std::vector<std::string> body_ids;
  // With --overwrite: the bodies of the entries the injection deletes.
  // Unreferenced once it commits, they stay in morgue/ while a page may
  // still read them, and must go before Gecko's cleanup after an unclean
  // shutdown meets them (docs/gecko.md, "Injected bodies and the quota
  // usage").
  std::vector<std::string> replaced_ids;
};

// The manifest's text: a header line, "cache_dir <path>", "fill_cache <id>"
// when there is one, then a line a body: its id for a staged body,
// "replaced <id>" for a replaced one.
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

// The fill cache ids of the dead injections into this cache directory.
std::vector<int64_t> DeadFills(const std::filesystem::path& cache_dir);

struct Recovery {
  int directories = 0;     // staging directories of dead processes removed
  int bodies_removed = 0;  // unreferenced listed bodies taken out of morgue/
  int bodies_kept = 0;     // staged bodies that a committed row references
  int bodies_waiting = 0;  // replaced bodies left for a time with no reader
  int fills_waiting = 0;   // directories kept for a fill's rows
};

// Who may be reading the origin's bodies while the recovery runs.
enum class Readers {
  // A live browser's pages (quiescectl's recovery beside a running
  // browser): a replaced body may still be streamed to one.
  kMaybe,
  // None: the browser is stopped, or the shim is at an open of
  // caches.sqlite that no connection of the host has open (Gecko keeps
  // the origin's connection open while any body stream is).
  kNone,
};

// Cleans up what dead injections into `cache_dir` left: each listed body
// that no row references (`referenced_ids`, read after any injection of
// theirs ended) is removed from morgue/, then the staging directory; with
// Readers::kMaybe, unreferenced replaced bodies stay, and so does their
// directory. So does the directory of a fill that is still among
// `unpublished_caches` (the caches that no storage row names, read with
// the rows), until a recovery that can delete its rows has run (the
// shim's and a pack's write nothing).
// A directory without a manifest moved nothing and just goes. Directories
// of other cache directories are left for their own origin's recovery.
Recovery RecoverStaging(const std::filesystem::path& cache_dir,
                        const std::set<std::string>& referenced_ids,
                        Readers readers,
                        const std::set<int64_t>& unpublished_caches);

}  // namespace quiesce

#endif  // QUIESCE_VFS_INJECT_STAGING_H_
