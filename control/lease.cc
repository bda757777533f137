#include "lease.h"

#include "jobs.h"

namespace quiesce::control {

bool Lease::Begin(uint64_t gate_token, Clock::time_point until) {
  MutexLock lock(&mu_);
  if (ended_) {
    db->ReopenGate(gate_token);
    return false;
  }
  token_ = gate_token;
  until_ = until;
  return true;
}

bool Lease::Acquire(uint64_t* token, Clock::time_point* until) {
  MutexLock lock(&mu_);
  if (ended_ || token_ == 0) return false;
  ++users_;
  *token = token_;
  *until = until_;
  return true;
}

void Lease::Unacquire() {
  MutexLock lock(&mu_);
  if (--users_ == 0 && reopen_pending_) {
    reopen_pending_ = false;
    db->ReopenGate(token_);
  }
}

bool Lease::Release() {
  bool intact = false;
  {
    MutexLock lock(&mu_);
    if (ended_) return false;
    ended_ = true;
    if (users_ > 0) {
      reopen_pending_ = true;  // the injection inside reopens at its end
      intact = Clock::now() < until_;
    } else {
      intact = token_ != 0 && db->ReopenGate(token_);
    }
  }
  if (auto job = timer.lock()) job->Cancel();
  return intact;
}

bool Lease::End() {
  {
    MutexLock lock(&mu_);
    if (ended_) return false;
    ended_ = true;
    if (users_ > 0) {
      reopen_pending_ = true;
    } else if (token_ != 0) {
      db->ReopenGate(token_);
    }
  }
  if (auto job = timer.lock()) job->Cancel();
  return true;
}

}  // namespace quiesce::control
