// quiescectl bundle verify, and the .flap sides of inject and pack
// (docs/flap.md). A .flap is read with the flap_* code of the bundle
// library; inject converts it into a quiesce bundle and takes BundleInject's
// path from there (bodies staged first, then the injection's steps), pack takes
// BundlePack's snapshot-and-retry loop with PackFlap.
#include <stdlib.h>

#include <cstdio>
#include <fstream>
#include <sstream>

#include "bundle_command_parts.h"
#include "bundle_live.h"
#include "bundle_point.h"
#include "cache_bundle.h"
#include "exit_codes.h"
#include "flap.h"
#include "web_origin.h"

namespace quiesce::ctl {
namespace {

bool ReadText(const std::string& path, std::string* out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  std::ostringstream s;
  s << in.rdbuf();
  *out = s.str();
  return in.good() || in.eof();
}

// A scratch directory under TMPDIR, removed with everything in it.
class TempDir {
 public:
  TempDir() {
    std::string pattern =
        (std::filesystem::temp_directory_path() / "quiesce-flap-XXXXXX")
            .string();
    if (mkdtemp(pattern.data()) != nullptr) path_ = pattern;
  }
  ~TempDir() {
    std::error_code ignored;
    if (!path_.empty()) std::filesystem::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

// "<entry>: <reason>" split for --json.
std::pair<std::string, std::string> EntryAndReason(std::string_view message) {
  const size_t at = message.find(": ");
  if (at == std::string_view::npos) return {"", std::string(message)};
  return {std::string(message.substr(0, at)),
          std::string(message.substr(at + 2))};
}

// Read options from --trust / --app-id / --no-verify; false after
// reporting why.
bool Options(const BundleArgs& args, bundle::flap::ReadOptions* options,
             int* exit_code) {
  options->verify = !args.no_verify;
  if (!args.app_id.empty()) options->app_id = args.app_id;
  if (options->verify) {
    if (args.trust.empty()) {
      *exit_code = ReportFailure(
          {kExitUsage,
           args.operands.front() +
               " is an Appelflap bundle (.flap): give --trust ROOT.pem, the "
               "root certificate its deployment certificate must be signed "
               "by (or --no-verify to skip the chain and the signatures)"});
      return false;
    }
    if (!ReadText(args.trust, &options->trusted_root_pem)) {
      *exit_code =
          ReportFailure({kExitFailure, "cannot read --trust " + args.trust});
      return false;
    }
  }
  return true;
}

control::json InfoJson(const std::string& file,
                       const bundle::flap::FlapInfo& info,
                       const bundle::flap::ReadOptions& options) {
  control::json entries = control::json::array();
  for (const auto& e : info.entries) {
    entries.push_back(
        {{"index", e.index},
         {"url", e.url},
         {"request_bodysize",
          e.request_bodysize ? control::json(*e.request_bodysize) : nullptr},
         {"response_bodysize",
          e.response_bodysize ? control::json(*e.response_bodysize)
                              : nullptr},
         {"opaque", e.opaque}});
  }
  auto opt = [](const std::optional<int64_t>& v) {
    return v ? control::json(*v) : control::json(nullptr);
  };
  control::json out = {
      {"ok", true},
      {"file", file},
      {"format", "flap"},
      {"format_version", bundle::flap::kFormatVersion},
      {"verified", info.verified},
      {"app_id", info.verified ? options.app_id : ""},
      {"device_cn", info.device_cn},
      {"origin", info.origin},
      {"name", info.name},
      {"namespace", info.namespace_name},
      {"version", opt(info.version())},
      {"user_version", opt(info.user_version)},
      {"last_server_timestamp", opt(info.last_server_timestamp)},
      {"number_of_entries", info.number_of_entries},
      {"security_infos", info.security_infos},
      {"body_bytes", info.body_bytes},
      {"final_digest", info.final_digest},
      {"entries", entries}};
  if (info.sw_version) {
    out["service_worker"] = {{"version", *info.sw_version},
                             {"stanza", info.sw_stanza}};
  }
  return out;
}

}  // namespace

int BundleVerify(const BundleArgs& args) {
  const std::string& file = args.operands.front();
  bundle::flap::ReadOptions options;
  int code = kExitOk;
  if (!Options(args, &options, &code)) return code;
  auto info = bundle::flap::ReadFlap(file, options);
  if (!info.ok()) {
    const bool violation =
        info.status().code() == absl::StatusCode::kFailedPrecondition;
    const int exit = violation ? kExitRefused : ExitForStatus(info.status());
    if (args.json) {
      auto [entry, reason] =
          EntryAndReason(std::string(info.status().message()));
      PrintJson({{"ok", false},
                 {"file", file},
                 {"entry", entry},
                 {"reason", reason},
                 {"message", std::string(info.status().message())}});
    }
    return ReportFailure(
        {exit, file + (violation ? " rejected: " : ": ") +
                   std::string(info.status().message())});
  }
  if (args.json) {
    PrintJson(InfoJson(file, *info, options));
    return kExitOk;
  }
  std::printf("%s: a valid .flap (format %lld)%s\n", file.c_str(),
              static_cast<long long>(bundle::flap::kFormatVersion),
              info->verified
                  ? (", signed by \"" + info->device_cn + "\" for \"" +
                     options.app_id + "\"")
                        .c_str()
                  : ", NOT verified (--no-verify: chain and signatures "
                    "unchecked)");
  std::printf("  %s cache \"%s\" of %s, version %s, %lld entries, %lld "
              "security infos, %s of bodies\n",
              info->namespace_name.c_str(), info->name.c_str(),
              info->origin.c_str(),
              info->version() ? std::to_string(*info->version()).c_str()
                              : "none",
              static_cast<long long>(info->number_of_entries),
              static_cast<long long>(info->security_infos),
              HumanBytes(info->body_bytes).c_str());
  if (!info->sw_stanza.empty()) {
    std::printf("  service worker %s (scope %s)\n",
                info->sw_stanza.size() > 2 ? info->sw_stanza[2].c_str() : "",
                info->sw_stanza.size() > 1 ? info->sw_stanza[1].c_str() : "");
  }
  if (info->entries.empty()) return kExitOk;
  std::printf("%6s %12s %12s  %s\n", "INDEX", "REQ BODY", "RESP BODY", "URL");
  for (const auto& e : info->entries) {
    auto size = [](const std::optional<int64_t>& s) {
      return s ? std::to_string(*s) : std::string("-");
    };
    std::printf("%6lld %12s %12s  %s%s\n", static_cast<long long>(e.index),
                size(e.request_bodysize).c_str(),
                size(e.response_bodysize).c_str(), e.url.c_str(),
                e.opaque ? " (opaque)" : "");
  }
  return kExitOk;
}

int BundleInjectFlap(const BundleArgs& args) {
  const std::string& file = args.operands.front();
  bundle::flap::ReadOptions options;
  int code = kExitOk;
  if (!Options(args, &options, &code)) return code;
  TempDir scratch;
  if (scratch.path().empty()) {
    return ReportFailure({kExitFailure, "cannot create a scratch directory"});
  }
  const std::filesystem::path converted = scratch.path() / "bundle.zip";
  Note(std::string("verifying ") + file +
       (options.verify ? "" : " (--no-verify: structure and sizes only)"));
  auto info =
      bundle::flap::ConvertFlap(file, options, scratch.path(), converted);
  if (!info.ok()) {
    const bool violation =
        info.status().code() == absl::StatusCode::kFailedPrecondition;
    return ReportFailure(
        {violation ? kExitRefused : ExitForStatus(info.status()),
         file + (violation ? " rejected (nothing was injected): "
                           : ": ") +
             std::string(info.status().message()) +
             (bundle::flap::LooksLikeFlap(file)
                  ? ""
                  : " (it does not start as a .flap does; a quiesce "
                    "bundle is not signed: inject it without --trust)")});
  }
  if (!options.verify) {
    std::fprintf(stderr,
                 "quiescectl: bundle: %s injected UNVERIFIED (--no-verify): "
                 "its certificate chain, CNs and signatures were not "
                 "checked\n",
                 file.c_str());
  }
  if (info->namespace_name == "SWORK") {
    std::fprintf(stderr,
                 "quiescectl: bundle: %s is a service-worker bundle: its "
                 "cache goes into the chrome namespace as \"%s\"; the "
                 "registration (%s) is NOT installed: Gecko reads "
                 "serviceworker.txt only at startup (docs/flap.md)\n",
                 file.c_str(), info->name.c_str(),
                 info->sw_stanza.size() > 2 ? info->sw_stanza[2].c_str()
                                            : "?");
  }
  BundleArgs inner = args;
  inner.operands = {converted.string()};
  inner.shown_file = file;
  return BundleInject(inner);
}

int BundlePackFlap(const BundleArgs& args) {
  std::string error;
  const auto candidates = bundle::OriginCandidates(args.origin, &error);
  if (candidates.empty()) return ReportFailure({kExitUsage, error});
  if (Failure f; !OutputAllowed(args.output, args.force, &f)) {
    return ReportFailure(f);
  }
  bundle::flap::FlapPackOptions options;
  options.replace_existing = args.force;
  if (!ReadText(args.key, &options.device_key_pem)) {
    return ReportFailure({kExitFailure, "cannot read --key " + args.key});
  }
  if (!ReadText(args.chain, &options.chain_pem)) {
    return ReportFailure({kExitFailure, "cannot read --chain " + args.chain});
  }
  options.keep_credential_headers = args.keep_credentials;
  options.user_version = args.flap_version;
  Failure failure;
  auto live = LiveOrigin::Find(args.socket, candidates, args.profile, &failure);
  if (!live) return ReportFailure(failure);
  const bundle::WebOrigin* origin = &live->origin();
  // Rows and bodies at one quiescent point, as `bundle pack` takes them
  // (bundle_point.h): a body the page deletes later stays readable
  // through its pin.
  auto point = PackPoint::Take(*live, &failure);
  if (!point) return ReportFailure(failure);
  std::optional<bundle::MissingBody> missing;
  options.on_missing_body = [&missing](const bundle::MissingBody& m) {
    missing = m;
    return false;
  };
  auto packed =
      bundle::flap::PackFlap(point->image().db(), point->pins(),
                             origin->origin, args.cache, options, args.output);
  if (!packed.ok()) {
    if (missing) {
      // Cannot happen with pins: every referenced body was linked.
      return ReportFailure(
          {kExitFailure, "the pinned body " + missing->path.string() +
                             " of " + missing->request_url +
                             " is missing: " + packed.status().ToString()});
    }
    if (packed.status().code() == absl::StatusCode::kNotFound) {
      return ReportFailure({kExitRefused, "no cache \"" + args.cache +
                                              "\" in " + origin->origin});
    }
    return ReportStatus(packed.status(), "pack");
  }
  if (args.json) {
    PrintJson({{"file", args.output},
               {"format", "flap"},
               {"origin", origin->origin},
               {"cache", args.cache},
               {"entries", packed->entry_count},
               {"body_bytes", packed->body_bytes},
               {"schema_version", packed->schema_version},
               {"written_schema", bundle::flap::kAppelflapSchema},
               {"dropped", packed->dropped},
               {"reframed_bodies", packed->reframed_bodies},
               {"generation", point->image().generation()},
               {"point", point->Describe()},
               {"credentials_kept", args.keep_credentials},
               {"final_digest", packed->final_digest}});
    return kExitOk;
  }
  std::printf("%s: .flap of cache \"%s\" of %s, %lld entries, %s of "
              "bodies, from schema %lld as Appelflap's %lld, as of "
              "generation %llu\n",
              args.output.c_str(), args.cache.c_str(), origin->origin.c_str(),
              static_cast<long long>(packed->entry_count),
              HumanBytes(packed->body_bytes).c_str(),
              static_cast<long long>(packed->schema_version),
              static_cast<long long>(bundle::flap::kAppelflapSchema),
              static_cast<unsigned long long>(point->image().generation()));
  if (!packed->dropped.empty()) {
    std::string d;
    for (const std::string& c : packed->dropped) {
      d += (d.empty() ? "" : ", ") + c;
    }
    std::printf("  not carried (Appelflap's schema 28 lacks them): %s\n",
                d.c_str());
  }
  if (packed->reframed_bodies > 0) {
    std::printf("  %lld bodies rewritten as compressed Snappy chunks "
                "(Gecko's reader takes no other)\n",
                static_cast<long long>(packed->reframed_bodies));
  }
  return kExitOk;
}

}  // namespace quiesce::ctl
