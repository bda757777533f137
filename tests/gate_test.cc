// The gate's admission of host lock requests, in the cases a live workload
// hits only by chance.
#include <gtest/gtest.h>
#include <sched.h>
#include <sqlite3.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <thread>

#include "hold.h"
#include "own_connection.h"
#include "shim_file.h"
#include "result_matchers.h"
#include "support.h"
#include "wal_format.h"

namespace quiesce::testing {
namespace {

using Clock = std::chrono::steady_clock;

// Keeps the calling thread, and the threads it starts meanwhile, on one
// CPU for its lifetime.
class OneCpu {
 public:
  OneCpu() {
    if (sched_getaffinity(0, sizeof(all_), &all_) != 0) return;
    cpu_set_t one;
    CPU_ZERO(&one);
    for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
      if (CPU_ISSET(cpu, &all_)) {
        CPU_SET(cpu, &one);
        break;
      }
    }
    ok_ = sched_setaffinity(0, sizeof(one), &one) == 0;
  }
  ~OneCpu() {
    if (ok_) sched_setaffinity(0, sizeof(all_), &all_);
  }
  OneCpu(const OneCpu&) = delete;
  OneCpu& operator=(const OneCpu&) = delete;
  bool ok() const { return ok_; }

 private:
  cpu_set_t all_{};
  bool ok_ = false;
};

// A live WAL database with one row in t, and the gate closed the way an
// injection closes it.
class GateTest : public ::testing::Test {
 protected:
  void SetUp() override {
    host_.Must("PRAGMA journal_mode=WAL; CREATE TABLE t(x); "
               "INSERT INTO t VALUES (1)");
    db_ = Find(path_);
  }
  Result<uint64_t> CloseForInjection() {
    const auto now = Clock::now();
    return db_->CloseGate(Drain::kInject, /*readers_may_proceed=*/false,
                          now + std::chrono::seconds(2),
                          now + std::chrono::seconds(5));
  }

  TempDir dir_;
  const std::string path_ = dir_.File("gate.db");
  Conn host_{path_};
  std::shared_ptr<Database> db_;
};

// hold's point, without the control channel: the gate is closed, and the
// files are named as they stand; reopening with its token ends it.
TEST_F(GateTest, AHoldNamesItsPointAndTheFilesAsTheyStand) {
  const auto now = Clock::now();
  auto hold = ReachHoldPoint(*db_, now + std::chrono::seconds(2),
                             now + std::chrono::seconds(5));
  ASSERT_OK(hold);
  const DatabaseInfo info = db_->Info();
  EXPECT_TRUE(info.gate_closed);
  EXPECT_EQ(hold.value().generation, info.generation);
  EXPECT_EQ(hold.value().position, info.position);
  EXPECT_EQ(hold.value().locking_mode, LockingMode::kNormal);
  EXPECT_EQ(hold.value().db_bytes,
            static_cast<int64_t>(std::filesystem::file_size(path_)));
  EXPECT_EQ(hold.value().wal_bytes,
            static_cast<int64_t>(std::filesystem::file_size(path_ + "-wal")));
  EXPECT_EQ(hold.value().journal_bytes, -1);
  EXPECT_TRUE(db_->ReopenGate(hold.value().token));
  EXPECT_FALSE(db_->Info().gate_closed);
}

// A host transaction that does not end in time: the hold fails with what
// held it, and the gate is open again (the host's next commit goes on).
TEST_F(GateTest, AHoldThatCannotDrainFailsAndLeavesTheGateOpen) {
  host_.Must("BEGIN IMMEDIATE; INSERT INTO t VALUES (2)");
  const auto now = Clock::now();
  auto hold = ReachHoldPoint(*db_, now + std::chrono::milliseconds(50),
                             now + std::chrono::seconds(5));
  EXPECT_THAT(hold, IsError(ErrorCode::kTimeout,
                            HasSubstr("the host did not finish in time")));
  EXPECT_FALSE(db_->Info().gate_closed);
  host_.Must("COMMIT");
}

// A host request that found quiesce's own connection in its way waits for
// it with the database mutex released, and the gate may close meanwhile
// (the drain sees that handle holding nothing). Taking the lock then would
// start a transaction inside the quiescent point. The request must pass
// the gate again. Here: a checkpoint's CKPT, which quiesce's own
// connection holds while it checkpoints after an injection, and a hold's
// gate, which drains checkpoints too.
TEST_F(GateTest, ARequestThatWaitedForQuiesceIsAdmittedAgain) {
  Conn checkpointer(path_);
  EXPECT_EQ(checkpointer.Int("SELECT count(*) FROM t"), 1);

  auto own = OwnConnection::Open(*db_);
  ASSERT_OK(own);
  ASSERT_TRUE(own.value()->BeginRead().ok());  // maps the wal-index
  ASSERT_TRUE(own.value()->Exec("COMMIT").ok());
  auto* own_file = reinterpret_cast<sqlite3_file*>(own.value()->main_file());
  ASSERT_EQ(own_file->pMethods->xShmLock(
                own_file, wal::kCkptLock, 1,
                SQLITE_SHM_LOCK | SQLITE_SHM_EXCLUSIVE),
            SQLITE_OK);

  std::atomic<bool> done{false};
  int64_t busy = -1;
  // jthread: an ASSERT below returns through its join, bounded by the
  // lease or max_stall.
  std::jthread t([&] {
    busy = checkpointer.Int("PRAGMA wal_checkpoint(PASSIVE)");
    done = true;
  });
  ASSERT_TRUE(Eventually([&] { return Info(path_).gate.own_waits; }));

  // The checkpointer holds nothing, so the gate closes at once.
  const auto now = Clock::now();
  auto token = db_->CloseGate(Drain::kHold, /*readers_may_proceed=*/false,
                              now + std::chrono::seconds(2),
                              now + std::chrono::seconds(5));
  ASSERT_OK(token);
  ASSERT_EQ(own_file->pMethods->xShmLock(
                own_file, wal::kCkptLock, 1,
                SQLITE_SHM_UNLOCK | SQLITE_SHM_EXCLUSIVE),
            SQLITE_OK);

  // Now it must wait at the closed gate, not checkpoint.
  EXPECT_TRUE(Eventually([&] { return done || Info(path_).gate.waits; }));
  EXPECT_FALSE(done) << "a host checkpoint began at a closed gate";

  EXPECT_TRUE(db_->ReopenGate(token.value()));
  t.join();
  EXPECT_EQ(busy, 0);
  EXPECT_EQ(Info(path_).gate.stall_timeouts, 0u);
}

// A reopen releases every host request waiting at that moment. When the
// gate closes again before such a request gets to run (injections back to
// back), it still goes first; otherwise it could wait until max_stall.
TEST_F(GateTest, ARequestReleasedByAReopenGoesBeforeTheNextClose) {
  // On one CPU the woken writer cannot run between the reopen and the next
  // close unless that close waits for it.
  OneCpu one_cpu;
  ASSERT_TRUE(one_cpu.ok());
  Conn writer(path_);
  // Its schema loaded, the INSERT below is one transaction whose only
  // request that can wait at the gate is its first.
  EXPECT_EQ(writer.Int("SELECT count(*) FROM t"), 1);

  auto first = CloseForInjection();
  ASSERT_OK(first);
  int write_rc = -1;
  // jthread: an ASSERT below returns through its join, bounded by the
  // lease or max_stall.
  std::jthread t([&] { write_rc = writer.Exec("INSERT INTO t VALUES (2)"); });
  ASSERT_TRUE(Eventually([&] { return Info(path_).gate.waits; }));
  const uint64_t before = Info(path_).generation;

  EXPECT_TRUE(db_->ReopenGate(first.value()));
  auto second = CloseForInjection();  // at once, before the writer has run
  ASSERT_OK(second);
  EXPECT_EQ(Info(path_).generation, before + 1)
      << "the released writer did not commit before the next close";
  EXPECT_TRUE(db_->ReopenGate(second.value()));
  t.join();
  EXPECT_EQ(write_rc, SQLITE_OK);
  EXPECT_EQ(Info(path_).gate.stall_timeouts, 0u);
}

// A WAL connection that closes asks for EXCLUSIVE on the database file to
// checkpoint if it is the last one. quiesce's own connection holds SHARED
// there for as long as an operation runs: the close must not wait for it.
TEST_F(GateTest, AClosingWalConnectionDoesNotWaitForQuiesce) {
  auto own = OwnConnection::Open(*db_);
  ASSERT_OK(own);
  ASSERT_TRUE(own.value()->BeginRead().ok());  // as a snapshot does

  Conn other(path_);
  EXPECT_EQ(other.Int("SELECT count(*) FROM t"), 1);
  host_.Close();
  other.Close();
  EXPECT_EQ(Info(path_).gate.own_waits, 0u);
  // Nothing was checkpointed away under the open read transaction.
  EXPECT_TRUE(std::filesystem::exists(path_ + "-wal"));
  ASSERT_TRUE(own.value()->Exec("COMMIT").ok());
}

}  // namespace
}  // namespace quiesce::testing
