// quiescectl bundle pack: one cache of a live origin into a bundle, from a
// consistent snapshot plus the body files in the live morgue/ (immutable
// once .final, so reading them beside the snapshot is safe).
#include <chrono>
#include <cstdio>
#include <optional>
#include <thread>

#include "bundle_command_parts.h"
#include "bundle_live.h"
#include "cache_bundle.h"
#include "exit_codes.h"
#include "gecko_origin.h"

namespace quiesce::ctl {
namespace {

// A body missing from morgue/ means its entry was deleted after the
// snapshot: a fresh snapshot no longer has it. After this many snapshots in
// a row lose a body, the page is deleting faster than we pack.
constexpr int kSnapshotAttempts = 3;

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
  const auto origin = ParseOrigin(args.origin);
  if (!origin) {
    return ReportFailure(
        {kExitUsage, "--origin needs an http(s) origin or URL"});
  }
  Failure failure;
  auto live = LiveOrigin::Find(args.socket, *origin, args.profile, &failure);
  if (!live) return ReportFailure(failure);

  std::optional<bundle::MissingBody> missing;
  bundle::PackOptions options;
  options.keep_credential_headers = args.keep_credentials;
  options.on_missing_body = [&missing](const bundle::MissingBody& m) {
    missing = m;
    return false;  // this snapshot is stale: start again from a fresh one
  };
  for (int attempt = 1; attempt <= kSnapshotAttempts; ++attempt) {
    missing.reset();
    auto image = live->Snapshot(SnapshotProgress(), &failure);
    if (!image) return ReportFailure(failure);
    auto packed = bundle::PackBundle(image->db(), live->cache_dir(),
                                     origin->origin, args.cache, options,
                                     args.output);
    if (packed.ok()) {
      if (args.json) {
        PrintJson({{"file", args.output},
                   {"origin", origin->origin},
                   {"cache", args.cache},
                   {"entries", packed->entry_count},
                   {"body_bytes", packed->body_bytes},
                   {"schema_version", packed->schema_version},
                   {"generation", image->generation()},
                   {"snapshots", attempt},
                   {"credentials_kept", args.keep_credentials},
                   {"meta_sha256", packed->meta_sha256}});
      } else {
        std::printf(
            "%s: cache \"%s\" of %s, %lld entries, %s of bodies, schema "
            "%lld, as of generation %llu%s\n  META.json sha256 %s\n",
            args.output.c_str(), args.cache.c_str(), origin->origin.c_str(),
            static_cast<long long>(packed->entry_count),
            HumanBytes(packed->body_bytes).c_str(),
            static_cast<long long>(packed->schema_version),
            static_cast<unsigned long long>(image->generation()),
            args.keep_credentials ? ", credential headers kept" : "",
            packed->meta_sha256.c_str());
      }
      return kExitOk;
    }
    if (!missing) {
      if (packed.status().code() == absl::StatusCode::kNotFound) {
        return ReportFailure(
            {kExitRefused, "no cache \"" + args.cache + "\" in " +
                               origin->origin + " (" +
                               KnownCaches(image->db()) + ")"});
      }
      return ReportStatus(packed.status(), "pack");
    }
    Note("a body of " + missing->request_url +
         " disappeared after the snapshot (the page deleted it): packing "
         "again from a fresh snapshot");
    std::this_thread::sleep_for(std::chrono::milliseconds(100 * attempt));
  }
  return ReportFailure(
      {kExitBusy,
       "the body file " + missing->path.string() + " of " +
           missing->request_url + " was gone after each of " +
           std::to_string(kSnapshotAttempts) +
           " snapshots: the page keeps deleting entries of \"" + args.cache +
           "\"; try again when it is idle. Nothing was written."});
}

}  // namespace quiesce::ctl
