#include "gate.h"

#include <utility>

namespace quiesce {

Result<Ok> Gate::BeginClose(Drain level, bool readers_may_proceed) {
  RevokeIfExpired(Clock::now());  // a lease nobody ended
  if (state_ != State::kOpen) {
    return Error{ErrorCode::kBusy, "another client holds a quiescent point"};
  }
  state_ = State::kClosing;
  drain_ = level;
  readers_may_proceed_ = readers_may_proceed;
  return Ok{};
}

Error Gate::DrainTimeout(std::string what) {
  ++stats_.drain_timeouts;
  OpenLocked(/*revoked=*/false);
  return Error{ErrorCode::kTimeout,
               "the host did not finish in time: " + std::move(what)};
}

bool Gate::Reopen(uint64_t token) {
  if (state_ != State::kClosed || token != token_) return false;
  const bool intact = Clock::now() < closed_until_;
  OpenLocked(/*revoked=*/!intact);
  return intact;
}

void Gate::RevokeIfExpired(Clock::time_point now) {
  if (state_ == State::kClosed && now >= closed_until_) {
    OpenLocked(/*revoked=*/true);
  }
}

void Gate::OpenLocked(bool revoked) {
  if (revoked) ++stats_.revocations;
  state_ = State::kOpen;
  ++reopens_;
  released_waiters_ = waiters_;
  readers_may_proceed_ = false;
  ++token_;  // a revoked lease's token no longer matches
  cv_.SignalAll();
}

Clock::duration Gate::HostWaitingFor(bool at_gate) const {
  const Clock::time_point now = Clock::now();
  Clock::duration longest = Clock::duration::zero();
  if (own_waiters_ > 0) longest = now - own_waiters_since_;
  if (at_gate && waiters_ > 0 && now - waiters_since_ > longest) {
    longest = now - waiters_since_;
  }
  return longest;
}

void Gate::OnLocksChanged(bool own) {
  if (state_ == State::kClosing || (own && own_waited_for_)) {
    if (own) own_waited_for_ = false;
    cv_.SignalAll();
  }
}

}  // namespace quiesce
