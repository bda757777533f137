// The gate of one database: the state machine that makes a quiescent point
// and bounds every host wait it causes (DESIGN.md "The gate").
//
// It knows nothing of SQLite, files or handles. Its owner (Database) says
// what still keeps a closing gate from being quiescent and which host
// requests a closed gate holds back; the gate keeps the state (open,
// closing, closed), the lease (its token and its end), the requests
// waiting and the order they go in, and counts every wait where it
// happens (GateStats). tests/gate_state_test.cc drives it without SQLite.
//
// Thread safety: the owner's mutex guards the gate, and every method but
// Wake() requires it. An owner tells the analysis that the mutex it holds
// is the gate's with HeldAs() (it cannot follow the pointer).
#ifndef QUIESCE_VFS_GATE_H_
#define QUIESCE_VFS_GATE_H_

#include <cassert>
#include <cstdint>
#include <string>

#include "clock.h"
#include "mutex.h"
#include "result.h"

namespace quiesce {

// What a closing gate waits for before the point is quiescent.
enum class Drain : uint8_t {
  kWriters,  // rollback-mode snapshot: no host writer (RESERVED or more)
  kInject,   // everything but passive checkpointers
  kHold,     // everything, checkpoints included
  // locking_mode=EXCLUSIVE, where the host's locks never drop between
  // transactions: the write gate. Writes already under way finish, and a
  // rollback transaction that has written the database file commits or
  // rolls back; then writes that would change what a raw copy reads wait.
  kExclusiveWrites,
};

// Every wait of a host request that quiesce causes, counted where it
// happens, by cause. DESIGN.md "The gate": an unmeasured wait is a bug.
struct GateStats {
  uint64_t closes = 0;          // quiescent points reached
  uint64_t drain_timeouts = 0;  // closes that failed: a holder did not finish
  // Host requests (lock requests, or writes under the exclusive-locking
  // write gate) held back at a closed gate: how many, for how long in all,
  // the longest.
  uint64_t waits = 0;
  uint64_t wait_us = 0;
  uint64_t max_wait_us = 0;
  // Host lock requests that waited for a lock quiesce's own connection
  // held (a FULL/RESTART/TRUNCATE checkpoint against a snapshot's read
  // mark, a rollback writer against a copy's SHARED, anything against a
  // lock quiesce holds exclusively for a moment).
  uint64_t own_waits = 0;
  uint64_t own_wait_us = 0;
  uint64_t own_max_wait_us = 0;
  uint64_t stall_timeouts = 0;  // waits of either cause that reached
                                // max_stall: a fault
  uint64_t revocations = 0;     // leases ended by their time limit
  // quiesce operations that gave up a lock or a closed gate because a host
  // request waited on it while the operation waited on its client.
  uint64_t yields = 0;
};

class Gate {
 public:
  // lease_cap: how long the gate may stay closed, draining included.
  Gate(Mutex* mu, Clock::duration lease_cap) : mu(mu), lease_cap_(lease_cap) {}
  Gate(const Gate&) = delete;
  Gate& operator=(const Gate&) = delete;

  // The owner's mutex, which guards the gate.
  Mutex* const mu;
  // For the owner, holding `held`: tells the analysis that it is mu.
  // Checked in debug builds.
  void HeldAs(const Mutex& held) const QUIESCE_REQUIRES(held)
      QUIESCE_ASSERT_CAPABILITY(mu) {
    assert(&held == mu);
    (void)held;
  }

  bool open() const QUIESCE_REQUIRES(mu) { return state_ == State::kOpen; }
  bool closing() const QUIESCE_REQUIRES(mu) {
    return state_ == State::kClosing;
  }
  Drain drain() const QUIESCE_REQUIRES(mu) { return drain_; }
  bool readers_may_proceed() const QUIESCE_REQUIRES(mu) {
    return readers_may_proceed_;
  }
  const GateStats& stats() const QUIESCE_REQUIRES(mu) { return stats_; }
  Clock::duration lease_cap() const { return lease_cap_; }

  // The first half of a close: kBusy when another lease holds the gate
  // (a lease past its end is revoked first); otherwise the gate is closing
  // from now on, and the host requests its owner holds back Wait().
  Result<Ok> BeginClose(Drain level, bool readers_may_proceed)
      QUIESCE_REQUIRES(mu);
  // The second half: waits until drain_deadline (capped at lease_cap from
  // the call) for drained() to say so and for the requests the last reopen
  // released to pass; woken by Wake() and by the gate's own changes. Then
  // the point is quiescent until Reopen(token) or `closed_until` (capped
  // likewise), whichever comes first. On timeout the gate reopens and the
  // error (kTimeout) says what held it: `describe()`, or the released
  // requests that did not run.
  template <typename Drained, typename Describe>
  Result<uint64_t> FinishClose(Clock::time_point drain_deadline,
                               Clock::time_point closed_until,
                               Drained drained, Describe describe)
      QUIESCE_REQUIRES(mu);
  // Reopens the gate. False when the lease had already ended by its time
  // limit (the point was not quiescent throughout) or the token is not the
  // lease's.
  bool Reopen(uint64_t token) QUIESCE_REQUIRES(mu);

  // A host request the closed gate holds back waits here while held_back()
  // says so, until a reopen, the lease's end (which revokes the lease) or
  // `deadline`. Counted in stats(); false when it waited until the
  // deadline (max_stall: a fault the owner logs).
  template <typename HeldBack>
  bool Wait(HeldBack held_back, Clock::time_point deadline)
      QUIESCE_REQUIRES(mu);

  // A host request that got BUSY from a lock quiesce's own connection
  // holds: waits while conflicts() says so, until `deadline`, counted in
  // stats(). kNone: nothing to wait for (the host gets BUSY, as beside any
  // other connection); kReleased: the lock went, retry; kStalled: waited
  // until the deadline (a fault the owner logs), retry.
  enum class OwnWait : uint8_t { kNone, kReleased, kStalled };
  template <typename Conflicts>
  OwnWait AwaitOwn(Conflicts conflicts, Clock::time_point deadline)
      QUIESCE_REQUIRES(mu);

  // How long the longest-waiting host request has waited for quiesce's
  // own connection's lock (and, with at_gate, at a closed gate); zero when
  // none waits.
  Clock::duration HostWaitingFor(bool at_gate) const QUIESCE_REQUIRES(mu);
  // An operation gave up what a host waited for.
  void CountYield() QUIESCE_REQUIRES(mu) { ++stats_.yields; }
  // A handle's locks changed (`own`: quiesce's own connection's): wakes a
  // drain, or a request waiting for quiesce's own connection. On an open
  // gate with nobody waiting, a branch.
  void OnLocksChanged(bool own) QUIESCE_REQUIRES(mu);
  // Something a drain or a held-back request may care about changed.
  void Wake() { cv_.SignalAll(); }

 private:
  // kOpen: everything passes. kClosing: new host transactions wait while
  // in-flight ones drain. kClosed: a quiescent point.
  enum class State : uint8_t { kOpen, kClosing, kClosed };

  void OpenLocked(bool revoked) QUIESCE_REQUIRES(mu);
  // A closed gate whose lease ran out and that nobody reopened: revoke it,
  // so that no client can keep the host waiting.
  void RevokeIfExpired(Clock::time_point now) QUIESCE_REQUIRES(mu);
  Error DrainTimeout(std::string what) QUIESCE_REQUIRES(mu);
  // Calls one of the owner's predicates, with mu held. They require the
  // owner's mutex, which is mu (HeldAs checks it at every entry); the
  // analysis cannot match the two names through the template, so this
  // call, and only it, is exempt.
  template <typename F>
  static auto Ask(F& owner_predicate) QUIESCE_NO_TSA {
    return owner_predicate();
  }

  const Clock::duration lease_cap_;
  State state_ QUIESCE_GUARDED_BY(mu) = State::kOpen;
  Drain drain_ QUIESCE_GUARDED_BY(mu) = Drain::kHold;
  bool readers_may_proceed_ QUIESCE_GUARDED_BY(mu) = false;
  uint64_t token_ QUIESCE_GUARDED_BY(mu) = 0;
  Clock::time_point closed_until_ QUIESCE_GUARDED_BY(mu);
  int waiters_ QUIESCE_GUARDED_BY(mu) = 0;  // host requests waiting
  Clock::time_point waiters_since_ QUIESCE_GUARDED_BY(mu);  // since 0 -> 1
  // A reopen releases every request waiting at that moment, and they go
  // first: each goes ahead even if the gate is closing again by the time
  // it runs, and a close is not complete until all have passed. Without
  // that, closes back to back could keep one waiting until max_stall.
  uint64_t reopens_ QUIESCE_GUARDED_BY(mu) = 0;
  int released_waiters_ QUIESCE_GUARDED_BY(mu) = 0;  // not run yet
  bool own_waited_for_ QUIESCE_GUARDED_BY(mu) = false;
  int own_waiters_ QUIESCE_GUARDED_BY(mu) = 0;
  Clock::time_point own_waiters_since_ QUIESCE_GUARDED_BY(mu);
  CondVar cv_;
  GateStats stats_ QUIESCE_GUARDED_BY(mu);
};

template <typename Drained, typename Describe>
Result<uint64_t> Gate::FinishClose(Clock::time_point drain_deadline,
                                   Clock::time_point closed_until,
                                   Drained drained, Describe describe) {
  const Clock::time_point cap = Clock::now() + lease_cap_;
  if (drain_deadline > cap) drain_deadline = cap;
  if (closed_until > cap) closed_until = cap;
  for (;;) {
    const bool is_drained = Ask(drained);
    if (is_drained && released_waiters_ == 0) break;
    if (Clock::now() >= drain_deadline) {
      return DrainTimeout(
          is_drained ? std::to_string(released_waiters_) +
                           " lock requests released by the last reopen "
                           "have not run"
                     : Ask(describe));
    }
    cv_.WaitUntil(mu, drain_deadline);
  }
  state_ = State::kClosed;
  closed_until_ = closed_until;
  ++stats_.closes;
  return ++token_;
}

template <typename HeldBack>
bool Gate::Wait(HeldBack held_back, Clock::time_point deadline) {
  const Clock::time_point start = Clock::now();
  const uint64_t reopens = reopens_;
  if (waiters_++ == 0) waiters_since_ = start;
  ++stats_.waits;
  bool in_time = true;
  while (state_ != State::kOpen && reopens_ == reopens && Ask(held_back)) {
    const Clock::time_point now = Clock::now();
    RevokeIfExpired(now);
    if (state_ == State::kOpen) break;
    if (now >= deadline) {
      ++stats_.stall_timeouts;
      in_time = false;
      break;
    }
    Clock::time_point until = deadline;
    if (state_ == State::kClosed && closed_until_ < until) {
      until = closed_until_;
    }
    cv_.WaitUntil(mu, until);
  }
  --waiters_;
  if (reopens_ != reopens) {
    --released_waiters_;
    if (state_ == State::kClosing) cv_.SignalAll();
  }
  const uint64_t waited = Micros(Clock::now() - start);
  stats_.wait_us += waited;
  if (waited > stats_.max_wait_us) stats_.max_wait_us = waited;
  return in_time;
}

template <typename Conflicts>
Gate::OwnWait Gate::AwaitOwn(Conflicts conflicts, Clock::time_point deadline) {
  if (!Ask(conflicts) || Clock::now() >= deadline) return OwnWait::kNone;
  const Clock::time_point start = Clock::now();
  ++stats_.own_waits;
  if (own_waiters_++ == 0) own_waiters_since_ = start;
  bool still = true;
  while ((still = Ask(conflicts)) && Clock::now() < deadline) {
    own_waited_for_ = true;
    cv_.WaitUntil(mu, deadline);
  }
  --own_waiters_;
  const uint64_t waited = Micros(Clock::now() - start);
  stats_.own_wait_us += waited;
  if (waited > stats_.own_max_wait_us) stats_.own_max_wait_us = waited;
  if (!still) return OwnWait::kReleased;
  ++stats_.stall_timeouts;
  return OwnWait::kStalled;
}

}  // namespace quiesce

#endif  // QUIESCE_VFS_GATE_H_
