// The gate's admission of host lock requests, in the cases a live workload
// hits only by chance.
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <thread>

#include "own_connection.h"
#include "shim_file.h"
#include "support.h"
#include "wal_format.h"

namespace quiesce::testing {
namespace {

using Clock = std::chrono::steady_clock;

// Polls `done` every millisecond for up to ten seconds.
template <typename Done>
bool Eventually(Done done) {
  const auto give_up = Clock::now() + std::chrono::seconds(10);
  while (!done()) {
    if (Clock::now() >= give_up) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

// A host request that found quiesce's own connection in its way waits for
// it with the database mutex released, and the gate may close meanwhile
// (the drain sees that handle holding nothing). Taking the lock then would
// start a transaction inside the quiescent point: for an injection, a read
// snapshot the injection makes stale (the host's BEGIN IMMEDIATE then fails
// with SQLITE_BUSY_SNAPSHOT). The request must pass the gate again.
TEST(Gate, ARequestThatWaitedForQuiesceIsAdmittedAgain) {
  TempDir dir;
  const std::string path = dir.File("gate.db");
  Conn host(path);
  host.Must("PRAGMA journal_mode=WAL; CREATE TABLE t(x); "
            "INSERT INTO t VALUES (1)");
  Conn reader(path);
  // A read now leaves a read mark at the current end of the WAL: the next
  // read asks straight for that mark, shared.
  EXPECT_EQ(reader.Int("SELECT count(*) FROM t"), 1);
  auto db = Find(path);

  auto own = OwnConnection::Open(*db);
  ASSERT_TRUE(own.ok()) << own.error().message;
  ASSERT_TRUE(own.value()->BeginRead().ok());  // maps the wal-index
  ASSERT_TRUE(own.value()->Exec("COMMIT").ok());
  auto* own_file = reinterpret_cast<sqlite3_file*>(own.value()->main_file());
  // Every read mark, as a checkpoint holds one while it moves it.
  const int marks = wal::kNumLocks - wal::kReadLock0;
  ASSERT_EQ(own_file->pMethods->xShmLock(
                own_file, wal::kReadLock0, marks,
                SQLITE_SHM_LOCK | SQLITE_SHM_EXCLUSIVE),
            SQLITE_OK);

  std::atomic<bool> read_done{false};
  int read_rc = -1;
  std::thread t([&] {
    read_rc = reader.Exec("BEGIN; SELECT count(*) FROM t; COMMIT");
    read_done = true;
  });
  ASSERT_TRUE(Eventually([&] { return Info(path).gate.own_conflict_waits; }));

  // The reader holds nothing, so the gate closes at once.
  const auto now = Clock::now();
  auto token = db->CloseGate(Drain::kInject, /*readers_may_proceed=*/false,
                             now + std::chrono::seconds(2),
                             now + std::chrono::seconds(5));
  ASSERT_TRUE(token.ok()) << token.error().message;
  ASSERT_EQ(own_file->pMethods->xShmLock(
                own_file, wal::kReadLock0, marks,
                SQLITE_SHM_UNLOCK | SQLITE_SHM_EXCLUSIVE),
            SQLITE_OK);

  // Now it must wait at the closed gate, not read.
  EXPECT_TRUE(Eventually([&] { return read_done || Info(path).gate.waits; }));
  EXPECT_FALSE(read_done) << "a host transaction began at a closed gate";

  EXPECT_TRUE(db->ReopenGate(token.value()));
  t.join();
  EXPECT_EQ(read_rc, SQLITE_OK);
  EXPECT_EQ(Info(path).gate.stall_timeouts, 0u);
}

// A reopen releases every host request waiting at that moment. When the
// gate closes again before such a request gets to run (injections back to
// back), it still goes first; otherwise it could wait until max_stall.
TEST(Gate, ARequestReleasedByAReopenGoesBeforeTheNextClose) {
  TempDir dir;
  const std::string path = dir.File("fair.db");
  Conn host(path);
  host.Must("PRAGMA journal_mode=WAL; CREATE TABLE t(x)");
  auto db = Find(path);
  Conn writer(path);
  // Its schema loaded, the INSERT below is one transaction whose only
  // request that can wait at the gate is its first.
  EXPECT_EQ(writer.Int("SELECT count(*) FROM t"), 0);

  auto close = [&] {
    const auto now = Clock::now();
    return db->CloseGate(Drain::kInject, /*readers_may_proceed=*/false,
                         now + std::chrono::seconds(2),
                         now + std::chrono::seconds(3));
  };
  auto first = close();
  ASSERT_TRUE(first.ok()) << first.error().message;
  int write_rc = -1;
  std::thread t([&] { write_rc = writer.Exec("INSERT INTO t VALUES (1)"); });
  ASSERT_TRUE(Eventually([&] { return Info(path).gate.waits; }));
  const uint64_t before = Info(path).generation;

  EXPECT_TRUE(db->ReopenGate(first.value()));
  auto second = close();  // at once, before the writer can have run
  ASSERT_TRUE(second.ok()) << second.error().message;
  EXPECT_EQ(Info(path).generation, before + 1)
      << "the released writer did not commit before the next close";
  EXPECT_TRUE(db->ReopenGate(second.value()));
  t.join();
  EXPECT_EQ(write_rc, SQLITE_OK);
  EXPECT_EQ(Info(path).gate.stall_timeouts, 0u);
}

// A WAL connection that closes asks for EXCLUSIVE on the database file to
// checkpoint if it is the last one. quiesce's own connection holds SHARED
// there for as long as an operation runs: the close must not wait for it.
TEST(Gate, AClosingWalConnectionDoesNotWaitForQuiesce) {
  TempDir dir;
  const std::string path = dir.File("close.db");
  Conn host(path);
  host.Must("PRAGMA journal_mode=WAL; CREATE TABLE t(x); "
            "INSERT INTO t VALUES (1)");
  auto own = OwnConnection::Open(*Find(path));
  ASSERT_TRUE(own.ok()) << own.error().message;
  ASSERT_TRUE(own.value()->BeginRead().ok());  // as a snapshot does

  Conn other(path);
  EXPECT_EQ(other.Int("SELECT count(*) FROM t"), 1);
  host.Close();
  other.Close();
  EXPECT_EQ(Info(path).gate.own_conflict_waits, 0u);
  // Nothing was checkpointed away under the open read transaction.
  EXPECT_TRUE(std::filesystem::exists(path + "-wal"));
  ASSERT_TRUE(own.value()->Exec("COMMIT").ok());
}

}  // namespace
}  // namespace quiesce::testing
