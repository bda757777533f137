// The transactions of an injection plan run against a live origin, one
// `inject` request each (bundle inject). A new cache is filled in short
// transactions that no page can see and then published by one tiny one
// (bundle::InjectionPlan), so the page waits for a few dozen rows at a
// time, never for the whole bundle. Each request prepares its statements
// before the host's gate closes.
#ifndef QUIESCE_TOOLS_QUIESCECTL_INJECT_STEPS_H_
#define QUIESCE_TOOLS_QUIESCECTL_INJECT_STEPS_H_

#include <cstdint>
#include <filesystem>
#include <memory>
#include <vector>

#include "bundle_live.h"
#include "cache_bundle.h"
#include "operations.h"

namespace quiesce::ctl {

class InjectSteps {
 public:
  // Writes every step's script and parameters into the origin's scratch
  // directory.
  static std::unique_ptr<InjectSteps> Write(LiveOrigin& live,
                                            const bundle::InjectionPlan& plan,
                                            Failure* failure);

  size_t size() const { return files_.size(); }
  // Runs step `i`. For a fill, step 0's last_insert_rowid is the new
  // cache's id, which the later steps bind. A transport failure is
  // kExitUnreachable: whether that step committed cannot be known.
  bool Run(size_t i, Failure* failure);
  // Deletes the fill made so far (rows of a cache that no storage row
  // names), when a later step failed; true if there was none.
  bool DeleteFill(Failure* failure);

  int64_t cache_id() const { return cache_id_; }
  // What the steps run so far cost the host, from the host's replies.
  int transactions() const { return transactions_; }
  double longest_gate_ms() const { return longest_gate_ms_; }
  double total_gate_ms() const { return total_gate_ms_; }
  double longest_drain_ms() const { return longest_drain_ms_; }
  int64_t changes() const { return changes_; }
  uint64_t generation() const { return generation_; }

 private:
  InjectSteps(LiveOrigin& live, bool fills) : live_(live), fills_(fills) {}

  LiveOrigin& live_;
  const bool fills_;
  std::vector<InjectFiles> files_;
  std::filesystem::path cache_id_file_;
  int64_t cache_id_ = 0;
  int transactions_ = 0;
  double longest_gate_ms_ = 0, total_gate_ms_ = 0, longest_drain_ms_ = 0;
  int64_t changes_ = 0;
  uint64_t generation_ = 0;
};

}  // namespace quiesce::ctl

#endif  // QUIESCE_TOOLS_QUIESCECTL_INJECT_STEPS_H_
