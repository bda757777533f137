// The gate's state machine alone (vfs/gate.h), with no SQLite, no files
// and no handles: the owner's predicates are flags under the owner's
// mutex. Closes and their drains, leases and their end, the requests held
// back and the order they go in, quiesce's own-lock waits, and that each
// wait is counted where it happens. Waits for events, never for time: a
// test thread's wait is observed through HostWaitingFor.
#include "gate.h"

#include <gtest/gtest.h>

#include <thread>

namespace quiesce {
namespace {

using std::chrono::hours;
using std::chrono::milliseconds;

class GateStateTest : public ::testing::Test {
 protected:
  // Closes with nothing to drain; the lease lasts until closed_until.
  uint64_t Close(Clock::time_point closed_until) {
    MutexLock lock(gate_.mu);
    EXPECT_TRUE(gate_.BeginClose(Drain::kHold, false).ok());
    Result<uint64_t> token = gate_.FinishClose(
        Clock::now() + hours(1), closed_until, [] { return true; },
        [] { return std::string("nothing"); });
    EXPECT_TRUE(token.ok()) << token.error().message;
    return token.ok() ? token.value() : 0;
  }
  // A host request the closed gate holds back, on a thread of its own;
  // *in_time, set under the gate's mutex as the request passes, says it
  // passed before its distant deadline. A jthread: an ASSERT that returns
  // early joins it rather than aborting the binary.
  std::jthread HeldBackRequest(bool* in_time) {
    return std::jthread([this, in_time] {
      MutexLock lock(gate_.mu);
      *in_time = gate_.Wait([] { return true; }, Clock::now() + hours(1));
    });
  }
  // Until a request waits at the gate (at_gate) or for quiesce's own lock.
  void AwaitWaiter(bool at_gate) {
    for (;;) {
      {
        MutexLock lock(gate_.mu);
        if (gate_.HostWaitingFor(at_gate) > Clock::duration::zero()) return;
      }
      std::this_thread::yield();
    }
  }
  GateStats Stats() {
    MutexLock lock(gate_.mu);
    return gate_.stats();
  }
  bool Open() {
    MutexLock lock(gate_.mu);
    return gate_.open();
  }

  Mutex mu_;
  Gate gate_{&mu_, hours(1)};
};

TEST_F(GateStateTest, ACloseWithNothingToDrainIsQuiescentAtOnce) {
  const uint64_t token = Close(Clock::now() + hours(1));
  EXPECT_FALSE(Open());
  EXPECT_EQ(Stats().closes, 1u);
  MutexLock lock(gate_.mu);
  EXPECT_FALSE(gate_.Reopen(token + 1)) << "another lease's token";
  EXPECT_FALSE(gate_.open());
  EXPECT_TRUE(gate_.Reopen(token)) << "intact: ended before its time limit";
  EXPECT_TRUE(gate_.open());
  EXPECT_FALSE(gate_.Reopen(token)) << "a lease ends once";
  EXPECT_EQ(gate_.stats().revocations, 0u);
}

TEST_F(GateStateTest, ASecondCloseIsBusyUntilTheFirstEnds) {
  const uint64_t token = Close(Clock::now() + hours(1));
  MutexLock lock(gate_.mu);
  const Result<Ok> second = gate_.BeginClose(Drain::kInject, false);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.error().code, ErrorCode::kBusy);
  EXPECT_TRUE(gate_.Reopen(token));
  EXPECT_TRUE(gate_.BeginClose(Drain::kInject, true).ok());
  EXPECT_TRUE(gate_.closing());
  EXPECT_EQ(gate_.drain(), Drain::kInject);
  EXPECT_TRUE(gate_.readers_may_proceed());
}

TEST_F(GateStateTest, ADrainThatDoesNotEndTimesOutSaysWhyAndReopens) {
  MutexLock lock(gate_.mu);
  ASSERT_TRUE(gate_.BeginClose(Drain::kHold, false).ok());
  const Result<uint64_t> token = gate_.FinishClose(
      Clock::now() + milliseconds(20), Clock::now() + hours(1),
      [] { return false; },
      [] { return std::string("handle 7 holds WRITE exclusive"); });
  ASSERT_FALSE(token.ok());
  EXPECT_EQ(token.error().code, ErrorCode::kTimeout);
  EXPECT_EQ(token.error().message,
            "the host did not finish in time: handle 7 holds WRITE exclusive");
  EXPECT_TRUE(gate_.open());
  EXPECT_EQ(gate_.stats().drain_timeouts, 1u);
  EXPECT_EQ(gate_.stats().closes, 0u);
}

TEST_F(GateStateTest, ADrainEndsWhenTheOwnerSaysSo) {
  bool drained = false;  // the owner's state, under mu_
  Result<uint64_t> token = Error{ErrorCode::kInternal, "not run"};
  std::thread closer([&] {
    MutexLock lock(gate_.mu);
    EXPECT_TRUE(gate_.BeginClose(Drain::kHold, false).ok());
    token = gate_.FinishClose(
        Clock::now() + hours(1), Clock::now() + hours(1),
        [&] { return drained; },
        [] { return std::string("the test's flag"); });
  });
  for (bool closing = false; !closing; std::this_thread::yield()) {
    MutexLock lock(gate_.mu);
    closing = gate_.closing();
  }
  {
    MutexLock lock(gate_.mu);
    drained = true;
  }
  gate_.Wake();
  closer.join();
  ASSERT_TRUE(token.ok()) << token.error().message;
  EXPECT_FALSE(Open());
}

TEST_F(GateStateTest, AHeldBackRequestPassesAtTheReopenAndIsCounted) {
  const uint64_t token = Close(Clock::now() + hours(1));
  bool in_time = false;
  std::jthread host = HeldBackRequest(&in_time);
  AwaitWaiter(/*at_gate=*/true);
  {
    MutexLock lock(gate_.mu);
    EXPECT_EQ(gate_.HostWaitingFor(/*at_gate=*/false),
              Clock::duration::zero())
        << "not a wait for quiesce's own lock";
    EXPECT_TRUE(gate_.Reopen(token));
  }
  host.join();
  EXPECT_TRUE(in_time);
  const GateStats stats = Stats();
  EXPECT_EQ(stats.waits, 1u);
  EXPECT_GT(stats.wait_us, 0u);
  EXPECT_EQ(stats.max_wait_us, stats.wait_us);
  EXPECT_EQ(stats.stall_timeouts, 0u);
}

TEST_F(GateStateTest, ALeaseNobodyEndsIsRevokedByTheRequestItHoldsBack) {
  const uint64_t token = Close(Clock::now() + milliseconds(30));
  bool in_time = false;
  std::jthread host = HeldBackRequest(&in_time);
  host.join();
  EXPECT_TRUE(in_time) << "the lease's end, not the request's deadline";
  EXPECT_TRUE(Open());
  EXPECT_EQ(Stats().revocations, 1u);
  MutexLock lock(gate_.mu);
  EXPECT_FALSE(gate_.Reopen(token)) << "a revoked lease's token is void";
}

TEST_F(GateStateTest, NoLeaseOutlastsTheCap) {
  Gate capped(&mu_, milliseconds(30));
  {
    MutexLock lock(capped.mu);
    ASSERT_TRUE(capped.BeginClose(Drain::kHold, false).ok());
    ASSERT_TRUE(capped
                    .FinishClose(Clock::now() + hours(1),
                                 Clock::now() + hours(1), [] { return true; },
                                 [] { return std::string(); })
                    .ok());
    EXPECT_TRUE(capped.Wait([] { return true; }, Clock::now() + hours(1)));
    EXPECT_TRUE(capped.open()) << "revoked at the cap, not after an hour";
    EXPECT_EQ(capped.stats().revocations, 1u);
  }
}

TEST_F(GateStateTest, ARequestThatReachesItsDeadlineIsAStall) {
  Close(Clock::now() + hours(1));
  MutexLock lock(gate_.mu);
  EXPECT_FALSE(
      gate_.Wait([] { return true; }, Clock::now() + milliseconds(20)));
  EXPECT_FALSE(gate_.open()) << "the request goes ahead; the lease stands";
  EXPECT_EQ(gate_.stats().stall_timeouts, 1u);
  EXPECT_EQ(gate_.stats().waits, 1u);
}

TEST_F(GateStateTest, RequestsAReopenReleasedGoBeforeTheNextClose) {
  const uint64_t token = Close(Clock::now() + hours(1));
  bool passed = false;  // under the gate's mutex
  std::jthread host = HeldBackRequest(&passed);
  AwaitWaiter(/*at_gate=*/true);
  {
    MutexLock lock(gate_.mu);
    // Reopen and close again in one critical section: the released request
    // cannot have run yet, and it still goes first.
    EXPECT_TRUE(gate_.Reopen(token));
    EXPECT_TRUE(gate_.BeginClose(Drain::kHold, false).ok());
    EXPECT_FALSE(passed);
    const Result<uint64_t> again = gate_.FinishClose(
        Clock::now() + hours(1), Clock::now() + hours(1), [] { return true; },
        [] { return std::string(); });
    EXPECT_TRUE(again.ok()) << again.error().message;
    EXPECT_TRUE(passed) << "the close completed only after the request ran";
  }
  host.join();
}

TEST_F(GateStateTest, AReleasedRequestThatNeverRunsTimesTheCloseOut) {
  const uint64_t token = Close(Clock::now() + hours(1));
  bool in_time = false;
  std::jthread host = HeldBackRequest(&in_time);
  AwaitWaiter(/*at_gate=*/true);
  {
    MutexLock lock(gate_.mu);
    EXPECT_TRUE(gate_.Reopen(token));
    EXPECT_TRUE(gate_.BeginClose(Drain::kHold, false).ok());
    // A drain deadline already passed: the close gives up before it gives
    // up the mutex, so the released request has not run.
    const Result<uint64_t> again =
        gate_.FinishClose(Clock::now(), Clock::now() + hours(1),
                          [] { return true; }, [] { return std::string(); });
    ASSERT_FALSE(again.ok());
    EXPECT_EQ(again.error().message,
              "the host did not finish in time: 1 lock requests released by "
              "the last reopen have not run");
    EXPECT_TRUE(gate_.open());
  }
  host.join();
  EXPECT_TRUE(in_time) << "released, it ran once the mutex was free";
}

TEST_F(GateStateTest, OwnLockWaitsEndWhenTheLockGoesAndAreCounted) {
  bool held = true;  // quiesce's own connection's lock, under mu_
  Gate::OwnWait result = Gate::OwnWait::kNone;
  {
    MutexLock lock(gate_.mu);
    EXPECT_EQ(gate_.AwaitOwn([] { return false; }, Clock::now() + hours(1)),
              Gate::OwnWait::kNone);
    EXPECT_EQ(gate_.stats().own_waits, 0u) << "nothing to wait for";
  }
  std::thread host([&] {
    MutexLock lock(gate_.mu);
    result = gate_.AwaitOwn([&] { return held; },
                            Clock::now() + hours(1));
  });
  AwaitWaiter(/*at_gate=*/false);
  {
    MutexLock lock(gate_.mu);
    held = false;
    gate_.OnLocksChanged(/*own=*/true);
  }
  host.join();
  EXPECT_EQ(result, Gate::OwnWait::kReleased);
  const GateStats stats = Stats();
  EXPECT_EQ(stats.own_waits, 1u);
  EXPECT_GT(stats.own_wait_us, 0u);
  EXPECT_EQ(stats.waits, 0u) << "not a wait at the gate";
}

TEST_F(GateStateTest, AnOwnLockWaitThatReachesItsDeadlineIsAStall) {
  MutexLock lock(gate_.mu);
  EXPECT_EQ(gate_.AwaitOwn([] { return true; },
                           Clock::now() + milliseconds(20)),
            Gate::OwnWait::kStalled);
  EXPECT_EQ(gate_.stats().own_waits, 1u);
  EXPECT_EQ(gate_.stats().stall_timeouts, 1u);
}

}  // namespace
}  // namespace quiesce
