// quiescectl bundle inject: a verified bundle into a live origin. Bodies
// are staged in morgue/ first, then every row goes in with one injection
// whose blobs travel in a staged database (inject's params_from_
// attachment), so a page never sees a row whose body is missing.
#include <cstdio>
#include <fstream>
#include <set>

#include "bundle_command_parts.h"
#include "bundle_live.h"
#include "cache_bundle.h"
#include "exit_codes.h"
#include "gecko_origin.h"
#include "staged_params.h"

namespace quiesce::ctl {
namespace {

// After a failed injection: whether the live database now references none
// of the staged bodies, i.e. the transaction surely did not commit. False
// when that cannot be seen (the host is gone): then the bodies must stay.
bool SurelyNotCommitted(LiveOrigin& live, const bundle::InjectionPlan& plan) {
  Failure ignored;
  auto image = live.Snapshot(nullptr, &ignored);
  if (!image) return false;
  auto now = bundle::ReadLiveDatabase(image->db());
  if (!now.ok()) return false;
  std::set<std::string> staged;
  for (const bundle::StagedBody& b : plan.bodies) staged.insert(b.morgue_path);
  for (const auto& [cache_id, paths] : now->bodies_by_cache) {
    for (const std::string& p : paths) {
      if (staged.count(p)) return false;
    }
  }
  return true;
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
  const std::string& file = args.operands.front();
  auto opened = bundle::Bundle::Open(file);
  if (!opened.ok()) return ReportStatus(opened.status(), file);
  const bundle::Bundle& bndl = **opened;
  const std::string origin_text =
      args.origin.empty() ? bndl.meta().origin : args.origin;
  std::string error;
  const auto candidates = OriginCandidates(origin_text, &error);
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
  const GeckoOrigin* origin = &live->origin();
  auto image = live->Snapshot(SnapshotProgress(), &failure);
  if (!image) return ReportFailure(failure);
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
  Note("staging " + std::to_string(plan->bodies.size()) + " bodies (" +
       HumanBytes(StagedBytes(*plan)) + ") in " +
       live->cache_dir().string() + "/morgue");
  if (auto s = bundle::StageBodies(bndl, *plan, live->cache_dir()); !s.ok()) {
    return ReportStatus(s, "staging the bodies");
  }
  InjectFiles files;
  files.sql_path = sql_path.string();
  files.attach = std::make_pair(std::string("staged"), params_path.string());
  files.params_from_attachment = true;
  control::json result;
  if (!InjectFromFiles(live->client(), live->db_path(), files, &result,
                       &failure)) {
    if (SurelyNotCommitted(*live, *plan)) {
      bundle::UnstageBodies(*plan, live->cache_dir());
    } else {
      failure.message += " (whether it committed cannot be seen: the " +
                         std::to_string(plan->bodies.size()) +
                         " staged bodies stay in morgue/)";
    }
    return ReportFailure(failure);
  }
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
               {"drain_ms", result.value("drain_ms", 0.0)}});
    return kExitOk;
  }
  std::printf(
      "injected %lld entries into cache \"%s\" of %s (%zu bodies, %s); "
      "generation %llu; host held back %.2f ms (drain %.2f ms)\n",
      static_cast<long long>(plan->entry_count), plan->cache_name.c_str(),
      origin->origin.c_str(), plan->bodies.size(),
      HumanBytes(StagedBytes(*plan)).c_str(),
      static_cast<unsigned long long>(result.value("generation", 0ull)),
      result.value("gate_closed_ms", 0.0), result.value("drain_ms", 0.0));
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
                "until Gecko's next cleanup\n",
                plan->orphaned_bodies.size());
  }
  return kExitOk;
}

}  // namespace quiesce::ctl
