// quiescectl bundle inject: a verified bundle into a live origin. Bodies
// are staged and moved into morgue/ first, then the rows go in with the
// plan's injections (inject_steps.h), whose blobs travel in staged
// databases (inject's params_from_attachment), so a page never sees a row
// whose body is missing, nor a part of the bundle.
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
#include "inject_steps.h"
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
// POINT (staged, moved, filling, committed) and wait there to be killed;
// it goes on when FILE is removed, or after a minute.
void TestPause(const char* point) {
  const char* spec = std::getenv("QUIESCECTL_TEST_PAUSE");
  if (spec == nullptr) return;
  const std::string s = spec;
  const size_t colon = s.find(':');
  if (colon == std::string::npos || s.substr(0, colon) != point) return;
  const std::string file = s.substr(colon + 1);
  std::ofstream(file) << point << "\n";
  for (int i = 0; i < 600 && std::filesystem::exists(file); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
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
  // A dead injection's fill that was never published is deleted first,
  // so that its bodies are unreferenced when the rows are read.
  if (recover && !DeleteDeadFills(*live, &failure)) {
    return ReportFailure(failure);
  }
  auto image = live->Snapshot(TerminalProgress("snapshot", "pages"), &failure);
  if (!image) return ReportFailure(failure);
  Recovery recovered;
  if (recover) {
    recovered = RecoverStaging(cache_dir, ReferencedBodies(image->db()),
                               Readers::kMaybe,
                               UnpublishedCaches(image->db()));
  }
  auto target = bundle::ReadLiveDatabase(image->db());
  if (!target.ok()) return ReportStatus(target.status(), live->db_path());
  image.reset();

  bundle::InjectOptions options;
  options.rename = args.rename;
  options.overwrite = args.overwrite;
  auto plan = bundle::PlanInjection(bndl, *target, options);
  if (!plan.ok()) return ReportStatus(plan.status(), "refused");

  auto steps = InjectSteps::Write(*live, *plan, &failure);
  if (!steps) return ReportFailure(failure);
  // 1. Bodies staged outside the origin's storage.
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
  // The recovery's hold is released; the injection's own points are held
  // by the host, which waits for nothing of this process.
  YieldCpuToTheHost();
  Note("staging " + std::to_string(plan->bodies.size()) + " bodies (" +
       HumanBytes(StagedBytes(*plan)) + ") in " + staging.string());
  if (auto s = bundle::StageBodies(bndl, *plan, staging); !s.ok()) {
    return ReportStatus(s, "staging the bodies");
  }
  // 2. A new cache's row first, so that the manifest can name it: until
  // the last step publishes it, it is an orphaned cache that no page sees
  // (and that Gecko itself deletes after an unclean shutdown).
  size_t next_step = 0;
  if (plan->fills_new_cache) {
    if (!steps->Run(next_step++, &failure)) return ReportFailure(failure);
  }
  StagingManifest manifest{cache_dir.string(), steps->cache_id(), {}, {}};
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
  // What a failure the host answered undoes: the fill's rows, then the
  // bodies they named. If the rows cannot be deleted, the bodies stay
  // listed for the next command's recovery.
  size_t moved = 0;
  auto undo = [&](Failure f) {
    Failure ignored;
    if (!steps->DeleteFill(&ignored)) {
      staging_guard.keep = true;
      f.message += " (the rows filled so far stay until the next `bundle "
                   "inject` of " + origin->origin + " removes them)";
      return ReportFailure(f);
    }
    for (size_t i = 0; i < moved; ++i) {
      std::error_code ec;
      fs::remove(cache_dir / plan->bodies[i].morgue_path, ec);
    }
    return ReportFailure(f);
  };
  if (!WriteStagingManifest(staging, manifest, &failure)) {
    return undo(failure);
  }
  TestPause("staged");
  // 3. The bodies move into morgue/ before any row names them, outside
  // any point: renames cost ~0.2 ms each here (2,000 bodies held a page's
  // writes for ~400 ms), and inside a point they buy nothing. Gecko looks
  // for unreferenced bodies only when it opens an origin after an unclean
  // shutdown (docs/gecko.md), so live they are files it never reads until
  // the rows commit, and what a crash leaves is listed in the manifest.
  std::set<std::string> made;
  for (const bundle::StagedBody& b : plan->bodies) {
    const fs::path dst = cache_dir / b.morgue_path;
    if (made.insert(dst.parent_path().string()).second) {
      std::error_code ignored;
      fs::create_directories(dst.parent_path(), ignored);
    }
    if (rename((staging / b.morgue_path).c_str(), dst.c_str()) != 0) {
      return undo({kExitFailure, "cannot move a staged body to " +
                                     dst.string() + ": " +
                                     std::strerror(errno)});
    }
    ++moved;
  }
  TestPause("moved");
  // 4. The rows, a step at a time, each at its own quiescent point: the
  // host prepares a step's statements before it closes the gate, so the
  // page waits only while that step's rows go in.
  const auto progress = TerminalProgress("inject", "transactions");
  for (; next_step < steps->size(); ++next_step) {
    if (progress) progress(next_step, steps->size());
    if (!steps->Run(next_step, &failure)) {
      if (failure.exit_code == kExitUnreachable) {
        // The host went away: whether the step committed cannot be seen.
        // The manifest stays for the next command to check against the
        // rows.
        staging_guard.keep = true;
        failure.message +=
            " (whether the injection committed cannot be seen: the next "
            "`quiescectl bundle inject` of " + origin->origin +
            ", or `quiescectl bundle recover --profile DIR` with the "
            "browser stopped, removes what it left)";
        return ReportFailure(failure);
      }
      if (plan->fills_new_cache && next_step + 1 == steps->size()) {
        failure.message =
            "the cache \"" + plan->cache_name + "\" could not be published (" +
            failure.message + "); if the page made a cache of that name "
            "meanwhile, inject again with --rename or --overwrite";
      }
      return undo(failure);
    }
    if (next_step == 1 && plan->fills_new_cache) TestPause("filling");
  }
  if (progress) progress(steps->size(), steps->size());
  // The manifest stays while replaced bodies wait for a time with no
  // reader.
  staging_guard.keep = !manifest.replaced_ids.empty();
  TestPause("committed");
  const double held_ms = steps->longest_gate_ms();
  if (args.json) {
    PrintJson({{"file", file},
               {"origin", origin->origin},
               {"cache", plan->cache_name},
               {"entries", plan->entry_count},
               {"bodies", plan->bodies.size()},
               {"body_bytes", StagedBytes(*plan)},
               {"dropped_columns", plan->dropped_columns},
               {"orphaned_bodies", plan->orphaned_bodies.size()},
               {"changes", steps->changes()},
               {"generation", steps->generation()},
               {"transactions", steps->transactions()},
               {"gate_closed_ms", steps->total_gate_ms()},
               {"drain_ms", steps->longest_drain_ms()},
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
      "(%d transactions, %.1f ms in all)\n",
      static_cast<long long>(plan->entry_count), plan->cache_name.c_str(),
      origin->origin.c_str(), plan->bodies.size(),
      HumanBytes(StagedBytes(*plan)).c_str(),
      static_cast<unsigned long long>(steps->generation()), held_ms,
      steps->transactions(), steps->total_gate_ms());
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
