// quiescectl bundle: the command line, help text, shared output helpers,
// and `bundle ls`.
#include "bundle_commands.h"

#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>

#include "bundle_command_parts.h"
#include "bundle_live.h"
#include "cache_bundle.h"
#include "exit_codes.h"
#include "terminal_progress.h"
#include "web_origin.h"

namespace quiesce::ctl {

const char kBundleSynopsis[] =
    "bundle ls|pack|inject|verify|recover ... (Gecko Cache API caches, .flap)";

const char kBundleHelp[] =
    "Gecko Cache API caches of a live Firefox or GeckoView that runs the\n"
    "shim, as cache bundles (docs/bundles.md). The origin's caches.sqlite\n"
    "must be open in the browser: keep a page of the origin open.\n"
    "\n"
    "  bundle ls --origin URL [--profile DIR]\n"
    "      The origin's caches: namespace, name, entries, body bytes.\n"
    "  bundle pack --origin URL --cache NAME -o FILE [--keep-credentials]\n"
    "              [--force]\n"
    "      Packs one cache into a verified ZIP: its rows and body files are\n"
    "      taken at one quiescent point (a hold: the page's transactions\n"
    "      wait while the rows are snapshotted and the bodies pinned by hard\n"
    "      links), then copied at leisure, so a page that keeps writing and\n"
    "      deleting packs like an idle one. Without write access (no hold)\n"
    "      it pins right after a snapshot and retries (3 snapshots, then\n"
    "      exit 5). Cookie, Authorization, Proxy-Authorization and\n"
    "      Set-Cookie headers are left out unless --keep-credentials. An\n"
    "      existing FILE is kept (exit 2) unless --force.\n"
    "  bundle inject FILE [--origin URL] [--rename NAME] [--overwrite]\n"
    "      Verifies the bundle, stages its bodies beside the profile's\n"
    "      storage (quiesce-staging/), moves them into the origin's morgue/\n"
    "      and inserts the rows in short quiescent points (the page's writes\n"
    "      wait a few ms each, never fail): a new cache is filled unseen\n"
    "      and then published whole, so pages see all of it or none; an\n"
    "      --overwrite is one point. What a crash in between leaves, the shim\n"
    "      removes when the browser next opens the origin, before Gecko\n"
    "      could trip over it (docs/bundles.md, Crashes). The bundle's\n"
    "      origin unless --origin; --rename injects under another cache\n"
    "      name; --overwrite replaces a cache of the same name. Opaque\n"
    "      responses are refused. Needs write access (the browser's\n"
    "      QUIESCE_WRITABLE). Gecko counts the injected bodies in the\n"
    "      origin's quota only from its next start: a page that deletes\n"
    "      them before then fails with quota errors (docs/gecko.md).\n"
    "  bundle verify FILE.flap --trust ROOT.pem [--app-id ID]\n"
    "      Checks an Appelflap bundle (.flap, docs/flap.md) as Appelflap's\n"
    "      reader does: entry order, size limits, digest chain, every\n"
    "      signature, the certificate chain to ROOT and its CNs (app id\n"
    "      default org.nontrivialpursuit.appelflap). Names the first\n"
    "      violation (exit 4), else lists the cache, entries and sizes.\n"
    "  bundle inject FILE.flap --trust ROOT.pem [--app-id ID] [...]\n"
    "      A .flap (found by content) is verified completely first, then\n"
    "      injected as above. --no-verify skips the certificate chain, CNs\n"
    "      and signatures (never the structure and size checks).\n"
    "  bundle pack --format flap --key DEVICE_KEY.pem --chain CHAIN.pem\n"
    "      [--version N] --origin URL --cache NAME -o FILE\n"
    "      A signed .flap that Appelflap reads (its schema 28; what that\n"
    "      lacks is listed); Appelflap's header filter.\n"
    "  bundle recover --profile DIR\n"
    "      With the browser stopped: removes the body files that an\n"
    "      injection which died (browser or quiescectl killed) moved into an\n"
    "      origin's morgue/ and no row references, and those an --overwrite\n"
    "      replaced. The shim does the same when the browser next opens the\n"
    "      origin; this is for a browser that runs without it (docs/gecko.md\n"
    "      explains why they matter). bundle inject and pack do it live.\n"
    "\n"
    "URL is the origin (http://127.0.0.1:8765) or any URL of it; a host:port\n"
    "without a scheme means whichever of http and https the browser has\n"
    "open. --profile DIR picks the profile when the host has the origin\n"
    "open in several. Exit codes: 4 when the\n"
    "browser does not have the origin open, the cache is unknown, the\n"
    "bundle is refused or writing is not allowed; 5 when the host was busy;\n"
    "3 when the host went away, whenever it happened.\n"
    "\n"
    "  quiescectl bundle ls --origin http://127.0.0.1:8080\n"
    "  quiescectl bundle pack --origin http://127.0.0.1:8080 --cache v1 "
    "-o v1.zip\n"
    "  quiescectl bundle inject v1.zip --rename v1-copy\n"
    "  quiescectl --json bundle inject v1.zip --overwrite\n"
    "  quiescectl bundle verify peer.flap --trust root.pem\n"
    "  quiescectl bundle inject peer.flap --trust root.pem --rename v1-peer\n";

namespace {

int Usage(const std::string& message) {
  std::fprintf(stderr,
               "quiescectl: bundle: %s\n(quiescectl help bundle explains)\n",
               message.c_str());
  return kExitUsage;
}

bool Bad(const std::string& message) {
  Usage(message);
  return false;
}

// Parses ARGS after "bundle"; returns false after printing why.
bool Parse(const std::vector<std::string>& in, BundleArgs* out,
           int* exit_code) {
  *exit_code = kExitUsage;
  for (size_t i = 0; i < in.size(); ++i) {
    const std::string& a = in[i];
    auto value = [&](std::string* v) {
      if (i + 1 >= in.size()) return false;
      *v = in[++i];
      return true;
    };
    std::string v;
    if (a == "--json") {
      out->json = true;
    } else if (a == "--socket") {
      if (!value(&out->socket)) return Bad("--socket needs a PATH");
    } else if (a == "--origin") {
      if (!value(&out->origin)) return Bad("--origin needs a URL");
    } else if (a == "--profile") {
      if (!value(&out->profile)) return Bad("--profile needs a DIR");
    } else if (a == "--cache") {
      if (!value(&out->cache)) return Bad("--cache needs a NAME");
    } else if (a == "-o" || a == "--output") {
      if (!value(&out->output)) return Bad(a + " needs a FILE");
    } else if (a == "--keep-credentials") {
      out->keep_credentials = true;
    } else if (a == "--rename") {
      if (!value(&v) || v.empty()) return Bad("--rename needs a NAME");
      out->rename = v;
    } else if (a == "--overwrite") {
      out->overwrite = true;
    } else if (a == "--trust") {
      if (!value(&out->trust)) return Bad("--trust needs ROOT.pem");
    } else if (a == "--app-id") {
      if (!value(&out->app_id)) return Bad("--app-id needs an ID");
    } else if (a == "--no-verify") {
      out->no_verify = true;
    } else if (a == "--format") {
      if (!value(&out->format) ||
          (out->format != "flap" && out->format != "quiesce")) {
        return Bad("--format is flap or quiesce");
      }
    } else if (a == "--key") {
      if (!value(&out->key)) return Bad("--key needs DEVICE_KEY.pem");
    } else if (a == "--chain") {
      if (!value(&out->chain)) return Bad("--chain needs CHAIN.pem");
    } else if (a == "--version") {
      if (!value(&v) || v.empty() ||
          v.find_first_not_of("0123456789") != std::string::npos ||
          v.size() > 18) {
        return Bad("--version needs a number");
      }
      out->flap_version = std::stoll(v);
    } else if (a == "--force") {
      out->force = true;
    } else if (a.size() > 1 && a[0] == '-') {
      return Bad("unknown option " + a);
    } else if (out->subcommand.empty()) {
      out->subcommand = a;
    } else {
      out->operands.push_back(a);
    }
  }
  const std::string& sub = out->subcommand;
  if (sub == "verify") {
    if (out->operands.size() != 1) return Bad("verify takes one .flap FILE");
    if (out->trust.empty() && !out->no_verify) {
      return Bad("verify needs --trust ROOT.pem (the root certificate "
                 "deployment certificates must be signed by)");
    }
    if (!out->origin.empty() || !out->cache.empty() || !out->output.empty() ||
        out->keep_credentials || out->rename || out->overwrite ||
        !out->format.empty() || !out->key.empty() || !out->chain.empty() ||
        out->flap_version) {
      return Bad("verify takes FILE, --trust, --app-id, --no-verify and "
                 "--json only");
    }
    *exit_code = kExitOk;
    return true;
  }
  if (sub != "ls" && sub != "pack" && sub != "inject" && sub != "recover") {
    return Bad(sub.empty() ? "ls, pack, inject, verify or recover?"
                             : "no subcommand '" + sub + "'");
  }
  if (sub == "pack" && out->format == "flap" &&
      (out->key.empty() || out->chain.empty())) {
    return Bad("pack --format flap needs --key DEVICE_KEY.pem and "
               "--chain CHAIN.pem");
  }
  if ((sub != "pack" || out->format != "flap") &&
      (!out->key.empty() || !out->chain.empty() || out->flap_version)) {
    return Bad("--key, --chain and --version are for pack --format flap");
  }
  if (sub != "inject" &&
      (!out->trust.empty() || out->no_verify || !out->app_id.empty())) {
    return Bad("--trust, --app-id and --no-verify are for inject and "
               "verify");
  }
  const bool is_pack = sub == "pack", is_inject = sub == "inject";
  if (sub == "recover") {
    if (out->profile.empty() || !out->operands.empty() ||
        !out->origin.empty() || !out->cache.empty() || !out->output.empty()) {
      return Bad("recover takes --profile DIR and nothing else");
    }
    *exit_code = kExitOk;
    return true;
  }
  if (!is_inject && out->origin.empty()) {
    return Bad(sub + " needs --origin URL");
  }
  if (is_pack && (out->cache.empty() || out->output.empty())) {
    return Bad("pack needs --cache NAME and -o FILE");
  }
  if (is_inject != (out->operands.size() == 1) ||
      (!is_inject && !out->operands.empty())) {
    return Bad(is_inject ? "inject takes one bundle FILE"
                           : sub + " takes no operands");
  }
  if ((!is_pack && (!out->cache.empty() || !out->output.empty() ||
                    out->keep_credentials || out->force)) ||
      (!is_inject && (out->rename || out->overwrite))) {
    return Bad("an option that " + sub + " does not take");
  }
  *exit_code = kExitOk;
  return true;
}

}  // namespace

bool OutputAllowed(const std::string& output, bool force, Failure* failure) {
  struct stat st;
  if (force || lstat(output.c_str(), &st) != 0) return true;
  failure->exit_code = kExitUsage;
  failure->message = output + " exists: add --force to replace it";
  return false;
}

int ReportFailure(const Failure& failure) {
  std::fprintf(stderr, "quiescectl: bundle: %s\n", failure.message.c_str());
  return failure.exit_code;
}

int ExitForStatus(const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kNotFound:
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kUnimplemented:
      return kExitRefused;
    default:
      return kExitFailure;
  }
}

int ReportStatus(const absl::Status& status, const std::string& context) {
  return ReportFailure(
      {ExitForStatus(status),
       context + ": " + std::string(status.message())});
}

void PrintJson(const control::json& value) {
  std::printf("%s\n", value.dump(-1, ' ', false,
                                 control::json::error_handler_t::replace)
                          .c_str());
}

void Note(const std::string& line) {
  if (isatty(STDERR_FILENO)) std::fprintf(stderr, "%s\n", line.c_str());
}

void YieldCpuToTheHost() {
  // A failure leaves the priority as it was: slower for the host, no
  // less correct.
  setpriority(PRIO_PROCESS, 0, 19);
}

std::string HumanBytes(int64_t bytes) {
  char text[32];
  if (bytes >= 1000 * 1000) {
    std::snprintf(text, sizeof text, "%.1f MB", bytes / 1e6);
  } else if (bytes >= 1000) {
    std::snprintf(text, sizeof text, "%.1f kB", bytes / 1e3);
  } else {
    std::snprintf(text, sizeof text, "%lld B", static_cast<long long>(bytes));
  }
  return text;
}

int BundleLs(const BundleArgs& args) {
  std::string error;
  const auto candidates = bundle::OriginCandidates(args.origin, &error);
  if (candidates.empty()) return Usage(error);
  Failure failure;
  auto live = LiveOrigin::Find(args.socket, candidates, args.profile, &failure);
  if (!live) return ReportFailure(failure);
  const bundle::WebOrigin* origin = &live->origin();
  auto image = live->Snapshot(TerminalProgress("snapshot", "pages"), &failure);
  if (!image) return ReportFailure(failure);
  auto schema = bundle::ReadSchema(image->db());
  if (!schema.ok()) return ReportStatus(schema.status(), "reading the schema");
  auto caches = bundle::ListCaches(image->db());
  if (!caches.ok()) return ReportStatus(caches.status(), "listing caches");
  if (args.json) {
    control::json list = control::json::array();
    for (const bundle::CacheSummary& c : *caches) {
      list.push_back({{"namespace", c.namespace_id},
                      {"name", c.name},
                      {"entries", c.entry_count},
                      {"body_bytes", c.body_bytes},
                      {"opaque_entries", c.padded_entries}});
    }
    PrintJson({{"origin", origin->origin},
               {"database", live->db_path()},
               {"generation", image->generation()},
               {"schema_version", schema->user_version},
               {"caches", list}});
    return kExitOk;
  }
  std::printf("%s: %zu cache%s (generation %llu, schema %lld)\n  %s\n",
              origin->origin.c_str(), caches->size(),
              caches->size() == 1 ? "" : "s",
              static_cast<unsigned long long>(image->generation()),
              static_cast<long long>(schema->user_version),
              live->db_path().c_str());
  if (caches->empty()) return kExitOk;
  std::printf("%-10s %8s %12s %7s  %s\n", "NAMESPACE", "ENTRIES", "BODIES",
              "OPAQUE", "NAME");
  for (const bundle::CacheSummary& c : *caches) {
    const char* ns = c.namespace_id == bundle::kDefaultNamespace ? "page"
                     : c.namespace_id == bundle::kChromeOnlyNamespace
                         ? "chrome"
                         : "?";
    std::printf("%-10s %8lld %12s %7lld  %s\n", ns,
                static_cast<long long>(c.entry_count),
                HumanBytes(c.body_bytes).c_str(),
                static_cast<long long>(c.padded_entries), c.name.c_str());
  }
  return kExitOk;
}

int RunBundle(const std::string& socket, bool json,
              const std::vector<std::string>& in) {
  BundleArgs args;
  args.socket = socket;
  args.json = json;
  int code = kExitOk;
  if (!Parse(in, &args, &code)) return code;
  if (args.subcommand == "ls") return BundleLs(args);
  if (args.subcommand == "verify") return BundleVerify(args);
  if (args.subcommand == "pack") {
    return args.format == "flap" ? BundlePackFlap(args) : BundlePack(args);
  }
  if (args.subcommand == "recover") return BundleRecover(args);
  return BundleInject(args);
}

}  // namespace quiesce::ctl
