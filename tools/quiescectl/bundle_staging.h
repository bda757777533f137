// Crash-safe staging for `bundle inject` (docs/bundles.md, "Crashes";
// the layout and the recovery are vfs/inject_staging.h, shared with the
// shim).
//
// Many body files in an origin's morgue/ that no row references break
// Gecko's next session after an unclean shutdown (docs/gecko.md, "Orphan
// bodies"). So the bodies are written OUTSIDE the origin's storage, in
// `<profile>/quiesce-staging/inject-<pid>-XXXXXX/morgue/<n>/{uuid}.final`
// (same filesystem, so a move is a rename), with a manifest listing their
// body ids written and synced BEFORE any of them moves. Then they are
// renamed into the origin's morgue/ and the rows injected at the
// injection's own quiescent point (the renames need no point: docs/gecko.md
// says why); then the staging directory goes.
//
// What a crash can leave, and who cleans it:
// - quiescectl or the browser dies while staging: files in the staging
//   directory only; Gecko never sees them. The next bundle command on the
//   profile removes the directory (its process is gone).
// - dies between the renames and the commit (a fraction of a second for
//   2,000 bodies): unreferenced bodies in morgue/, listed in the
//   manifest. The shim removes every listed body that no row references
//   when the host next opens the origin's caches.sqlite (before Gecko's
//   own cleanup of orphans runs on it: vfs/staging_recovery.h); so do the
//   next `bundle inject` or `bundle pack` of the origin live, and `bundle
//   recover` with the browser stopped.
// - dies after the commit: every listed body is referenced; recovery
//   keeps them and removes the directory.
// With --overwrite the manifest also lists the replaced entries' bodies,
// and a successful injection leaves it behind: once the commit made them
// unreferenced they go when no page can read them (the shim's open, or
// `bundle recover`), never in quiescectl's live recovery.
#ifndef QUIESCE_TOOLS_QUIESCECTL_BUNDLE_STAGING_H_
#define QUIESCE_TOOLS_QUIESCECTL_BUNDLE_STAGING_H_

#include <sqlite3.h>

#include <cstdint>
#include <filesystem>
#include <set>
#include <string>
#include <vector>

#include "bundle_live.h"
#include "inject_staging.h"
#include "operations.h"

namespace quiesce::ctl {

// Writes `dir`/manifest (via a synced temporary file and a rename): the
// cache directory the bodies go to, their body ids, and those of the
// bodies the injection replaces (--overwrite).
bool WriteStagingManifest(const std::filesystem::path& dir,
                          const StagingManifest& manifest, Failure* failure);

// Deletes the rows of every unpublished fill that a dead injection into
// the live origin left (one injection each; a published one is left as it
// is). False with *failure if the host refused or went away.
bool DeleteDeadFills(LiveOrigin& live, Failure* failure);

// The body ids that rows of the image reference.
std::set<std::string> ReferencedBodies(sqlite3* image);

// The ids of the image's caches that no storage row names.
std::set<int64_t> UnpublishedCaches(sqlite3* image);

}  // namespace quiesce::ctl

#endif  // QUIESCE_TOOLS_QUIESCECTL_BUNDLE_STAGING_H_
