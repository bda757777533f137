#include "inject_steps.h"

#include <algorithm>
#include <fstream>
#include <string>

#include "exit_codes.h"
#include "staged_params.h"

namespace quiesce::ctl {
namespace {

bool WriteText(const std::filesystem::path& path, const std::string& text,
               Failure* failure) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  out.close();
  if (out.good()) return true;
  *failure = {kExitFailure, "cannot write " + path.string()};
  return false;
}

}  // namespace

std::unique_ptr<InjectSteps> InjectSteps::Write(
    LiveOrigin& live, const bundle::InjectionPlan& plan, Failure* failure) {
  std::unique_ptr<InjectSteps> steps(
      new InjectSteps(live, plan.fills_new_cache));
  steps->cache_id_file_ = live.Scratch("cache_id");
  for (size_t i = 0; i < plan.steps.size(); ++i) {
    const bundle::PlanStep& step = plan.steps[i];
    const std::string stem = "step-" + std::to_string(i);
    InjectFiles files;
    files.sql_path = live.Scratch(stem + ".sql").string();
    if (!WriteText(files.sql_path, step.sql, failure)) return nullptr;
    if (!step.blobs.empty()) {
      const auto params = live.Scratch(stem + ".sqlite");
      if (auto s = WriteStagedParams(step.blobs, params); !s.ok()) {
        *failure = {kExitFailure,
                    "staging the parameters: " + std::string(s.message())};
        return nullptr;
      }
      files.attach = std::make_pair(std::string("staged"), params.string());
      files.params_from_attachment = true;
    }
    if (plan.fills_new_cache && i > 0) {
      // The name without its ':' is how the request's params are keyed.
      files.params.emplace_back(bundle::kCacheIdParameter + 1,
                                steps->cache_id_file_.string());
    }
    steps->files_.push_back(std::move(files));
  }
  return steps;
}

bool InjectSteps::Run(size_t i, Failure* failure) {
  control::json result;
  if (!InjectFromFiles(live_.client(), live_.db_path(), files_[i], &result,
                       failure)) {
    return false;
  }
  ++transactions_;
  const double gate = result.value("gate_closed_ms", 0.0);
  longest_gate_ms_ = std::max(longest_gate_ms_, gate);
  total_gate_ms_ += gate;
  longest_drain_ms_ =
      std::max(longest_drain_ms_, result.value("drain_ms", 0.0));
  changes_ += result.value("changes", int64_t{0});
  generation_ = result.value("generation", generation_);
  if (fills_ && i == 0) {
    cache_id_ = result.value("last_insert_rowid", int64_t{0});
    if (cache_id_ <= 0) {
      *failure = {kExitFailure,
                  "the host did not say which cache id it made (a quiesce "
                  "older than this quiescectl?)"};
      return false;
    }
    return WriteText(cache_id_file_, std::to_string(cache_id_), failure);
  }
  return true;
}

bool InjectSteps::DeleteFill(Failure* failure) {
  if (cache_id_ <= 0) return true;
  InjectFiles files;
  files.sql_path = live_.Scratch("delete-fill.sql").string();
  if (!WriteText(files.sql_path, bundle::DeleteUnpublishedCacheSql(cache_id_),
                 failure)) {
    return false;
  }
  control::json result;
  if (!InjectFromFiles(live_.client(), live_.db_path(), files, &result,
                       failure)) {
    return false;
  }
  cache_id_ = 0;
  return true;
}

}  // namespace quiesce::ctl
