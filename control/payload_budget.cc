#include "payload_budget.h"

namespace quiesce::control {
namespace {

std::string MiB(size_t bytes) {
  return std::to_string((bytes + (1u << 20) - 1) >> 20) + " MiB";
}

}  // namespace

std::string PayloadBudget::Take(uint64_t session, size_t bytes) {
  MutexLock lock(&mu_);
  size_t& mine = by_session_[session];
  if (mine + bytes > per_client_) {
    std::string why = "this connection's injections would hold " +
                            MiB(mine + bytes) + " of payloads, over the " +
                            MiB(per_client_) +
                            " a client may have read at once; wait for "
                            "its other injections, then try again";
    if (mine == 0) by_session_.erase(session);
    return why;
  }
  if (used_ + bytes > total_) {
    std::string why =
        "the host holds " + MiB(used_) +
        " of other injections' payloads and takes at most " + MiB(total_) +
        " in total; try again when they are done";
    if (mine == 0) by_session_.erase(session);
    return why;
  }
  mine += bytes;
  used_ += bytes;
  return {};
}

void PayloadBudget::Give(uint64_t session, size_t bytes) {
  MutexLock lock(&mu_);
  const auto it = by_session_.find(session);
  if (it == by_session_.end()) return;
  const size_t given = std::min(bytes, it->second);
  it->second -= given;
  used_ -= std::min(given, used_);
  if (it->second == 0) by_session_.erase(it);
}

size_t PayloadBudget::in_use() {
  MutexLock lock(&mu_);
  return used_;
}

}  // namespace quiesce::control
