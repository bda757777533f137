// A quiescent point leased to one control session by "hold". It ends at
// release, at disconnect or at the lease's end, whichever comes first, and
// ending it reopens the database's gate exactly once.
//
// Thread safety: all methods may be called from any thread (the server's,
// and the hold's timer job).
#ifndef QUIESCE_CONTROL_LEASE_H_
#define QUIESCE_CONTROL_LEASE_H_

#include <chrono>
#include <atomic>
#include <cstdint>
#include <memory>

#include "database.h"
#include "mutex.h"

namespace quiesce::control {

class Job;

class Lease {
 public:
  std::shared_ptr<Database> db;
  std::weak_ptr<Job> timer;  // the job that ends the lease on time

  using Clock = std::chrono::steady_clock;

  // The gate closed with this token, until `until`. False (and the gate
  // reopened at once) when the lease ended while the drain ran.
  bool Begin(uint64_t gate_token, Clock::time_point until)
      QUIESCE_EXCLUDES(mu_);
  // An injection run inside this lease's point ("inject" with "hold"):
  // the gate's token and the point's end; false when the lease is not held
  // (still draining, or ended). While acquired, a release, disconnect or
  // time's up leaves the gate closed until Unacquire (the injection ends
  // before `until` by itself), so the host never meets quiesce's write
  // transaction.
  bool Acquire(uint64_t* token, Clock::time_point* until)
      QUIESCE_EXCLUDES(mu_);
  void Unacquire() QUIESCE_EXCLUDES(mu_);
  // The client's release: true when the point was quiescent throughout.
  bool Release() QUIESCE_EXCLUDES(mu_);
  // Disconnect or time's up: true when this call ended it.
  bool End() QUIESCE_EXCLUDES(mu_);

  // How the hold's job ended, set by the job before its last word: the
  // session then forgets the lease (and the Database it holds).
  enum class Outcome { kRunning, kFailed, kRevoked, kOver };
  void Finish(Outcome outcome) { outcome_.store(outcome); }
  Outcome outcome() const { return outcome_.load(); }

 private:
  Mutex mu_;
  bool ended_ QUIESCE_GUARDED_BY(mu_) = false;
  uint64_t token_ QUIESCE_GUARDED_BY(mu_) = 0;  // 0: still draining
  Clock::time_point until_ QUIESCE_GUARDED_BY(mu_);
  int users_ QUIESCE_GUARDED_BY(mu_) = 0;         // injections inside it
  bool reopen_pending_ QUIESCE_GUARDED_BY(mu_) = false;
  std::atomic<Outcome> outcome_{Outcome::kRunning};
};

}  // namespace quiesce::control

#endif  // QUIESCE_CONTROL_LEASE_H_
