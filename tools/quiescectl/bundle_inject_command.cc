// quiescectl bundle inject: a verified bundle into a live origin. Bodies
// are staged in morgue/ first, then every row goes in with one injection
// whose blobs travel in a staged database (inject's params_from_
// attachment), so a page never sees a row whose body is missing.
#include <chrono>
#include <cstdlib>
#include <thread>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <set>

#include "bundle_command_parts.h"
#include "bundle_live.h"
#include "cache_bundle.h"
#include "exit_codes.h"
#include "flap.h"
#include "web_origin.h"
#include "staged_params.h"
#include "terminal_progress.h"
#include "bundle_point.h"
#include "bundle_staging.h"
#include "gecko_body_id.h"

namespace quiesce::ctl {
namespace {

// A call whose transport failure means the host went away (exit 3).
bool HostCall(control::Client& client, const std::string& op,
              const control::json& args, control::Message* reply,
              Failure* failure) {
  std::string error;
  const auto s = client.Call(op, args, reply, 30000, &error);
  if (s == control::Client::Status::kTimeout) {
    *failure = {kExitBusy, op + ": no reply in time"};
    return false;
  }
  if (s != control::Client::Status::kOk) {
    *failure = {kExitUnreachable, op + ": the host went away: " + error};
    return false;
  }
  if (!reply->ok) {
    *failure = {ExitForError(reply->error_code),
                op + ": " + reply->error_message + " (" + reply->error_code +
                    ")"};
    return false;
  }
  return true;
}

// Test hook for the crash tests (tests/hostsim/inject_crash_test.cc):
// QUIESCECTL_TEST_PAUSE=POINT:FILE makes inject create FILE when it reaches
// POINT (staged, moved, committed) and wait there to be killed (at most a
// minute, then it goes on).
void TestPause(const char* point) {
  const char* spec = std::getenv("QUIESCECTL_TEST_PAUSE");
  if (spec == nullptr) return;
  const std::string s = spec;
  const size_t colon = s.find(':');
  if (colon == std::string::npos || s.substr(0, colon) != point) return;
  std::ofstream(s.substr(colon + 1)) << point << "\n";
  for (int i = 0; i < 600; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

bool WriteText(const std::filesystem::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  out.close();
  return out.good();
}

int64_t StagedBytes(const bundle::InjectionPlan& plan) {
  int64_t bytes = 0;
  for (const bundle::StagedBody& b : plan.bodies) bytes += b.size;
  return bytes;
}

}  // namespace

int BundleInject(const BundleArgs& args) {
  namespace fs = std::filesystem;
  if (args.shown_file.empty() &&
      (!args.trust.empty() || args.no_verify || !args.app_id.empty() ||
       bundle::flap::LooksLikeFlap(args.operands.front()))) {
    return BundleInjectFlap(args);  // verified, converted, then back here
  }
  const std::string& file =
      args.shown_file.empty() ? args.operands.front() : args.shown_file;
  auto opened = bundle::Bundle::Open(args.operands.front());
  if (!opened.ok()) return ReportStatus(opened.status(), file);
  const bundle::Bundle& bndl = **opened;
  const std::string origin_text =
      args.origin.empty() ? bndl.meta().origin : args.origin;
  std::string error;
  const auto candidates = bundle::OriginCandidates(origin_text, &error);
  if (candidates.empty()) {
    return ReportFailure(
        {args.origin.empty() ? kExitFailure : kExitUsage,
         args.origin.empty() ? "the bundle's origin \"" + origin_text +
                                   "\" is not an http(s) origin"
                             : error});
  }
  Failure failure;
  auto live = LiveOrigin::Find(args.socket, candidates, args.profile, &failure);
  if (!live) return ReportFailure(failure);
  const bundle::WebOrigin* origin = &live->origin();
  control::Client& client = live->client();
  const fs::path cache_dir = live->cache_dir();

  // What an earlier injection that died left behind: checked against rows
  // read after a hold came and went, so that its own injection (which
  // keeps the gate closed until it ends) has finished either way.
  const bool recover = NeedsRecovery(cache_dir);
  if (recover) {
    control::Message m;
    if (!HostCall(client, "hold", {{"db", live->db_path()}}, &m, &failure)) {
      return ReportFailure(failure);
    }
    const int64_t barrier = m.id.value_or(0);
    if (!HostCall(client, "release", {{"hold", barrier}}, &m, &failure)) {
      return ReportFailure(failure);
    }
  }
  auto image = live->Snapshot(TerminalProgress("snapshot", "pages"), &failure);
  if (!image) return ReportFailure(failure);
  Recovery recovered;
  if (recover) {
    recovered = RecoverStaging(cache_dir, ReferencedBodies(image->db()),
                               Readers::kMaybe);
  }
  auto target = bundle::ReadLiveDatabase(image->db());
  if (!target.ok()) return ReportStatus(target.status(), live->db_path());
  image.reset();

  bundle::InjectOptions options;
  options.rename = args.rename;
  options.overwrite = args.overwrite;
  auto plan = bundle::PlanInjection(bndl, *target, options);
  if (!plan.ok()) return ReportStatus(plan.status(), "refused");

  const auto sql_path = live->Scratch("plan.sql");
  const auto params_path = live->Scratch("params.sqlite");
  if (!WriteText(sql_path, plan->sql)) {
    return ReportFailure({kExitFailure, "cannot write " + sql_path.string()});
  }
  if (auto s = WriteStagedParams(plan->blobs, params_path); !s.ok()) {
    return ReportStatus(s, "staging the parameters");
  }
  // 1. Bodies staged outside the origin's storage; the manifest before any
  // of them moves.
  fs::path staging;
  if (!MakePrivateDir(StagingRoot(cache_dir), "inject-", &staging,
                      &failure)) {
    return ReportFailure(failure);
  }
  struct RemoveStaging {
    fs::path dir;
    bool keep = false;
    ~RemoveStaging() {
      std::error_code ec;
      if (!keep) fs::remove_all(dir, ec);
    }
  } staging_guard{staging};
  // The recovery's hold is released; the injection's own point is held by
  // the host, which waits for nothing of this process.
  YieldCpuToTheHost();
  Note("staging " + std::to_string(plan->bodies.size()) + " bodies (" +
       HumanBytes(StagedBytes(*plan)) + ") in " + staging.string());
  if (auto s = bundle::StageBodies(bndl, *plan, staging); !s.ok()) {
    return ReportStatus(s, "staging the bodies");
  }
  StagingManifest manifest{cache_dir.string(), {}, {}};
  for (const bundle::StagedBody& b : plan->bodies) {
    manifest.body_ids.push_back(b.body_id);
  }
  // --overwrite: the replaced entries' bodies, listed so that they go when
  // no page can still be reading them (the shim's next open of the
  // origin's caches.sqlite, or `bundle recover`), before an unclean
  // shutdown lets Gecko's own cleanup meet them (docs/gecko.md).
  for (const std::string& path : plan->orphaned_bodies) {
    const std::string id = fs::path(path).stem().string();
    if (IsBodyId(id)) manifest.replaced_ids.push_back(id);
  }
  if (!WriteStagingManifest(staging, manifest, &failure)) {
    return ReportFailure(failure);
  }
  TestPause("staged");
  // 2. The bodies move into morgue/ just before the point, not inside it:
  // renames cost ~0.2 ms each here (2,000 bodies held a page's writes for
  // ~400 ms), and inside the point they buy nothing. Gecko looks
  // for unreferenced bodies only when it opens an origin after an unclean
  // shutdown (docs/gecko.md), so live they are files it never reads until
  // the rows commit, and a crash between the renames and the commit leaves
  // the same listed orphans for `bundle recover` wherever the renames ran.
  size_t moved = 0;
  std::string move_error;
  std::set<std::string> made;
  for (const bundle::StagedBody& b : plan->bodies) {
    const fs::path dst = cache_dir / b.morgue_path;
    if (made.insert(dst.parent_path().string()).second) {
      std::error_code ignored;
      fs::create_directories(dst.parent_path(), ignored);
    }
    if (rename((staging / b.morgue_path).c_str(), dst.c_str()) != 0) {
      move_error = "cannot move a staged body to " + dst.string() + ": " +
                   std::strerror(errno);
      break;
    }
    ++moved;
  }
  auto unmove = [&] {
    for (size_t i = 0; i < moved; ++i) {
      std::error_code ignored;
      fs::remove(cache_dir / plan->bodies[i].morgue_path, ignored);
    }
  };
  if (!move_error.empty()) {
    unmove();
    return ReportFailure({kExitFailure, move_error});
  }
  TestPause("moved");
  // 3. One injection at its own quiescent point: the host prepares its
  // statements first and closes the gate only to run them, so the page's
  // transactions wait for the rows alone (gate_closed_ms). Inside a hold
  // they would also wait for the request's parsing and preparation (~300
  // ms of 350 for 2,000 rows, measured).
  InjectFiles files;
  files.sql_path = sql_path.string();
  files.attach = std::make_pair(std::string("staged"), params_path.string());
  files.params_from_attachment = true;
  control::json result;
  const bool injected =
      InjectFromFiles(client, live->db_path(), files, &result, &failure);
  if (!injected && failure.exit_code == kExitUnreachable) {
    // The host went away: whether the rows committed cannot be seen. The
    // manifest stays for the next command to check against the rows.
    staging_guard.keep = true;
    failure.message +=
        " (whether the injection committed cannot be seen: the next "
        "`quiescectl bundle inject` or `bundle pack` of " + origin->origin +
        ", or `quiescectl bundle recover --profile DIR` with the browser "
        "stopped, removes the staged bodies no row references)";
    return ReportFailure(failure);
  }
  if (!injected) {
    // The host answered: an injection that failed applied nothing, so its
    // bodies go.
    unmove();
    return ReportFailure(failure);
  }
  // The manifest stays while replaced bodies wait for a time with no
  // reader.
  staging_guard.keep = !manifest.replaced_ids.empty();
  TestPause("committed");
  const double held_ms = result.value("gate_closed_ms", 0.0);
  if (args.json) {
    PrintJson({{"file", file},
               {"origin", origin->origin},
               {"cache", plan->cache_name},
               {"entries", plan->entry_count},
               {"bodies", plan->bodies.size()},
               {"body_bytes", StagedBytes(*plan)},
               {"dropped_columns", plan->dropped_columns},
               {"orphaned_bodies", plan->orphaned_bodies.size()},
               {"changes", result.value("changes", 0ll)},
               {"generation", result.value("generation", 0ull)},
               {"gate_closed_ms", result.value("gate_closed_ms", 0.0)},
               {"drain_ms", result.value("drain_ms", 0.0)},
               {"held_ms", held_ms},
               // Not in Gecko's quota usage until the browser restarts
               // (docs/gecko.md, "Injected bodies and the quota usage").
               {"uncounted_body_bytes", StagedBytes(*plan)},
               {"recovered",
                {{"directories", recovered.directories},
                 {"bodies_removed", recovered.bodies_removed},
                 {"bodies_kept", recovered.bodies_kept}}}});
    return kExitOk;
  }
  std::printf(
      "injected %lld entries into cache \"%s\" of %s (%zu bodies, %s); "
      "generation %llu; the page's transactions held back at most %.1f ms "
      "(the rows injected in one point)\n",
      static_cast<long long>(plan->entry_count), plan->cache_name.c_str(),
      origin->origin.c_str(), plan->bodies.size(),
      HumanBytes(StagedBytes(*plan)).c_str(),
      static_cast<unsigned long long>(result.value("generation", 0ull)),
      held_ms);
  std::printf(
      "  Gecko counts these bodies in the origin's quota only from the "
      "browser's next start:\n  should the page delete them before, its "
      "storage fails with quota errors\n  until then (docs/gecko.md, "
      "\"Injected bodies and the quota usage\")\n");
  if (recovered.bodies_removed > 0 || recovered.directories > 0) {
    std::printf("  cleaned up after an earlier injection that died: %d "
                "unreferenced bodies removed from morgue/\n",
                recovered.bodies_removed);
  }
  if (!plan->dropped_columns.empty()) {
    std::string cols;
    for (const std::string& c : plan->dropped_columns) {
      cols += (cols.empty() ? "" : ", ") + c;
    }
    std::printf("  left out (not in this browser's schema): %s\n",
                cols.c_str());
  }
  if (!plan->orphaned_bodies.empty()) {
    std::printf("  %zu body files of the replaced entries stay in morgue/ "
                "while a page may still read\n  them; the shim removes them "
                "when the browser next opens the origin's storage\n  afresh "
                "(or `quiescectl bundle recover` with the browser stopped)\n",
                plan->orphaned_bodies.size());
  }
  return kExitOk;
}

}  // namespace quiesce::ctl
