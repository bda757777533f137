// quiescectl bundle pack: one cache of a live origin into a bundle, from
// the rows and the body files of one quiescent point (bundle_point.h): a
// page that keeps putting and deleting packs like an idle one.
#include <cstdio>
#include <optional>

#include "bundle_command_parts.h"
#include "bundle_live.h"
#include "bundle_point.h"
#include "bundle_staging.h"
#include "cache_bundle.h"
#include "exit_codes.h"
#include "terminal_progress.h"
#include "web_origin.h"

namespace quiesce::ctl {
namespace {

// The caches of the image, for an error about an unknown name.
std::string KnownCaches(sqlite3* image) {
  auto caches = bundle::ListCaches(image);
  if (!caches.ok() || caches->empty()) return "the origin has no caches";
  std::string names;
  for (const bundle::CacheSummary& c : *caches) {
    if (c.namespace_id != bundle::kDefaultNamespace) continue;
    names += (names.empty() ? "" : ", ") + ("\"" + c.name + "\"");
  }
  return names.empty() ? "the origin has no page caches"
                       : "its caches: " + names;
}

}  // namespace

int BundlePack(const BundleArgs& args) {
  std::string error;
  const auto candidates = bundle::OriginCandidates(args.origin, &error);
  if (candidates.empty()) return ReportFailure({kExitUsage, error});
  if (Failure f; !OutputAllowed(args.output, args.force, &f)) {
    return ReportFailure(f);
  }
  Failure failure;
  auto live = LiveOrigin::Find(args.socket, candidates, args.profile, &failure);
  if (!live) return ReportFailure(failure);
  const bundle::WebOrigin* origin = &live->origin();

  // Rows and bodies at one quiescent point: a body a later delete removes
  // from morgue/ stays readable through its pin.
  auto point = PackPoint::Take(*live, &failure);
  if (!point) return ReportFailure(failure);
  // An injection into this origin that died left staged bodies: the rows
  // at the point (after the gate was the dead one's) say which to keep.
  if (point->held() && NeedsRecovery(live->cache_dir())) {
    // A pack writes no rows: a dead injection's unpublished fill waits
    // for the next inject.
    RecoverStaging(live->cache_dir(), ReferencedBodies(point->image().db()),
                   Readers::kMaybe, UnpublishedCaches(point->image().db()));
  }
  // The point is released: from here on the host waits for nothing of
  // this process.
  YieldCpuToTheHost();
  bundle::PackOptions options;
  options.keep_credential_headers = args.keep_credentials;
  std::optional<bundle::MissingBody> missing;
  options.on_missing_body = [&missing](const bundle::MissingBody& m) {
    missing = m;
    return false;
  };
  options.on_progress =
      [reading = TerminalProgress("pack: reading bodies", "bodies"),
       writing = TerminalProgress("pack: writing the bundle", "")](
          bundle::PackPhase phase, uint64_t done, uint64_t total) {
        const auto& show =
            phase == bundle::PackPhase::kHashing ? reading : writing;
        if (show) show(done, total);
      };
  auto packed = bundle::PackBundle(point->image().db(), point->pins(),
                                   origin->origin, args.cache, options,
                                   args.output);
  if (!packed.ok()) {
    if (missing) {
      // Cannot happen with pins: every referenced body was linked.
      return ReportFailure(
          {kExitFailure, "the pinned body " + missing->path.string() +
                             " of " + missing->request_url +
                             " is missing: " + packed.status().ToString()});
    }
    if (packed.status().code() == absl::StatusCode::kNotFound) {
      return ReportFailure(
          {kExitRefused, "no cache \"" + args.cache + "\" in " +
                             origin->origin + " (" +
                             KnownCaches(point->image().db()) + ")"});
    }
    return ReportStatus(packed.status(), "pack");
  }
  if (args.json) {
    PrintJson({{"file", args.output},
               {"origin", origin->origin},
               {"cache", args.cache},
               {"entries", packed->entry_count},
               {"body_bytes", packed->body_bytes},
               {"schema_version", packed->schema_version},
               {"generation", point->image().generation()},
               {"point", point->Describe()},
               {"credentials_kept", args.keep_credentials},
               {"meta_sha256", packed->meta_sha256}});
  } else {
    std::printf(
        "%s: cache \"%s\" of %s, %lld entries, %s of bodies, schema "
        "%lld, as of generation %llu%s\n  %s %.1f ms (snapshot "
        "%.1f ms, %lld bodies pinned in %.1f ms)\n  META.json sha256 %s\n",
        args.output.c_str(), args.cache.c_str(), origin->origin.c_str(),
        static_cast<long long>(packed->entry_count),
        HumanBytes(packed->body_bytes).c_str(),
        static_cast<long long>(packed->schema_version),
        static_cast<unsigned long long>(point->image().generation()),
        args.keep_credentials ? ", credential headers kept" : "",
        point->held() ? "the page's transactions held back at most"
                      : "no write access, so no hold; pinned after the "
                        "snapshot in",
        point->held() ? point->held_ms()
                      : point->snapshot_ms() + point->pin_ms(), point->snapshot_ms(),
        static_cast<long long>(point->bodies_pinned()), point->pin_ms(),
        packed->meta_sha256.c_str());
  }
  return kExitOk;
}

}  // namespace quiesce::ctl
