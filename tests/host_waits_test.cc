// The host never waits on a client (DESIGN.md "The gate"): a WAL snapshot
// makes no host request wait, whatever its client does; a client that
// stops reading cannot hold a host request that does wait (a FULL
// checkpoint, a rollback writer) for longer than kClientYield; an
// injection cannot outlive its lease inside one function call. Every wait
// is read from the shim's own counters, where it happens.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "inject.h"
#include "own_connection.h"
#include "snapshot.h"
#include "result_matchers.h"
#include "support.h"

namespace quiesce::testing {
namespace {

using Clock = std::chrono::steady_clock;

// A pipe whose reading end nobody reads: a stalled client.
class StalledClient {
 public:
  StalledClient() {
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) == 0) {
      read_ = fds[0];
      write_ = fds[1];
    }
  }
  ~StalledClient() {
    if (read_ >= 0) close(read_);
    if (write_ >= 0) close(write_);
  }
  StalledClient(const StalledClient&) = delete;
  StalledClient& operator=(const StalledClient&) = delete;
  int fd() const { return write_; }
  // The pipe is full: the snapshot writing to it now waits on its client.
  bool Full() const {
    int queued = 0;
    return ioctl(read_, FIONREAD, &queued) == 0 &&
           queued >= fcntl(read_, F_GETPIPE_SZ);
  }

 private:
  int read_ = -1;
  int write_ = -1;
};

// A snapshot running on its own thread into a stalled client's pipe.
class StalledSnapshot {
 public:
  explicit StalledSnapshot(const std::string& path)
      : thread_([this, db = Find(path)] {
          SnapshotOptions options;
          options.deadline = Clock::now() + std::chrono::seconds(60);
          options.cancelled = &cancel_;
          auto r = WriteSnapshot(*db, client_.fd(), options);
          ok_ = r.ok();
          if (!r.ok()) error_ = r.error();
          done_ = true;
        }) {}
  ~StalledSnapshot() {
    cancel_ = true;
    thread_.join();
  }
  StalledSnapshot(const StalledSnapshot&) = delete;
  StalledSnapshot& operator=(const StalledSnapshot&) = delete;

  bool Stalled() const { return client_.Full() && !done_; }
  bool done() const { return done_; }
  bool ok() const { return ok_; }
  const Error& error() const { return error_; }

 private:
  StalledClient client_;
  std::atomic<bool> cancel_{false};
  std::atomic<bool> done_{false};
  std::atomic<bool> ok_{false};
  Error error_;
  std::thread thread_;
};

class HostWaitsTest : public ::testing::Test {
 protected:
  // A database of about 600 KiB, larger than a pipe's buffer.
  void Fill(const char* journal_mode) {
    host_.Must(std::string("PRAGMA journal_mode=") + journal_mode);
    host_.Must("CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB)");
    host_.Must("BEGIN");
    for (int i = 0; i < 600; ++i) {
      host_.Must("INSERT INTO t(v) VALUES (randomblob(1000))");
    }
    host_.Must("COMMIT");
  }
  int Commit() { return host_.Exec("INSERT INTO t(v) VALUES (randomblob(100))"); }
  // Runs `step` (which returns false on a host error) `n` times, or until
  // a minute has passed: a regression where each step waits max_stall
  // then fails on the count instead of running for hours.
  template <typename Step>
  void HostRuns(int n, Step step) {
    int errors = 0, done = 0;
    const auto give_up = Clock::now() + std::chrono::seconds(60);
    while (done < n && Clock::now() < give_up) {
      if (!step(done)) ++errors;
      ++done;
    }
    EXPECT_EQ(done, n);
    EXPECT_EQ(errors, 0);
  }
  void ExpectNoHostWait() {
    const GateStats gate = Info(path_).gate;
    EXPECT_EQ(gate.own_waits, 0u);
    EXPECT_EQ(gate.waits, 0u);
    EXPECT_EQ(gate.stall_timeouts, 0u);
  }

  TempDir dir_;
  const std::string path_ = dir_.File("live.db");
  Conn host_{path_};
};

// What a new WAL reader does next to a snapshot's read mark: it probes
// marks with EXCLUSIVE requests and moves on from a busy one. Writers
// restart the WAL when they can and auto-checkpoints copy what they may.
// None of it may wait for the snapshot.
TEST_F(HostWaitsTest, AWalSnapshotMakesNoHostRequestWait) {
  Fill("WAL");
  host_.Must("PRAGMA wal_autocheckpoint=20");
  StalledSnapshot snapshot(path_);
  ASSERT_TRUE(Eventually([&] { return snapshot.Stalled() || snapshot.done(); }));
  ASSERT_FALSE(snapshot.done()) << snapshot.error().message;

  // Commits, fresh readers and passive checkpoints.
  HostRuns(300, [&](int i) {
    Conn reader(path_);
    return Commit() == SQLITE_OK &&
           reader.Int("SELECT count(*) FROM t") >= 600 &&
           (i % 50 != 0 ||
            host_.Exec("PRAGMA wal_checkpoint(PASSIVE)") == SQLITE_OK);
  });
  ExpectNoHostWait();
}

// Eight snapshots whose clients never read, beside a writer with no busy
// handler at full speed (Gecko's cache connection).
TEST_F(HostWaitsTest, EightStalledSnapshotsCostAWalWriterNoWait) {
  Fill("WAL");
  host_.Must("PRAGMA wal_autocheckpoint=100");
  std::vector<std::unique_ptr<StalledSnapshot>> snapshots;
  for (int i = 0; i < 8; ++i) {
    snapshots.push_back(std::make_unique<StalledSnapshot>(path_));
  }
  for (auto& s : snapshots) {
    ASSERT_TRUE(Eventually([&] { return s->Stalled() || s->done(); }));
    ASSERT_FALSE(s->done()) << s->error().message;
  }
  HostRuns(2000, [&](int) { return Commit() == SQLITE_OK; });
  ExpectNoHostWait();
}

// A FULL checkpoint must get past every reader, the snapshot's read mark
// too: it waits for it, and a snapshot whose client does not read gives
// its mark up within kClientYield instead of holding the host.
TEST_F(HostWaitsTest, AStalledSnapshotYieldsToAFullCheckpoint) {
  Fill("WAL");
  host_.Must("PRAGMA wal_autocheckpoint=0");
  StalledSnapshot snapshot(path_);
  ASSERT_TRUE(Eventually([&] { return snapshot.Stalled() || snapshot.done(); }));
  ASSERT_FALSE(snapshot.done()) << snapshot.error().message;
  ASSERT_EQ(Commit(), SQLITE_OK);  // frames past the snapshot's mark

  // busy (0: completed), log frames, checkpointed frames
  EXPECT_EQ(host_.Int("PRAGMA wal_checkpoint(FULL)"), 0);
  ASSERT_TRUE(Eventually([&] { return snapshot.done(); }));
  EXPECT_THAT(snapshot, IsError(ErrorCode::kBusy, _));
  const GateStats gate = Info(path_).gate;
  EXPECT_EQ(gate.own_waits, 1u);
  EXPECT_EQ(gate.yields, 1u);
  EXPECT_EQ(gate.stall_timeouts, 0u);
}

// Rollback journal: a writer needs the copy's SHARED gone. A client that
// does not read cannot keep it.
TEST_F(HostWaitsTest, AStalledRollbackSnapshotYieldsToAWriter) {
  Fill("DELETE");
  StalledSnapshot snapshot(path_);
  ASSERT_TRUE(Eventually([&] { return snapshot.Stalled() || snapshot.done(); }));
  ASSERT_FALSE(snapshot.done()) << snapshot.error().message;

  EXPECT_EQ(Commit(), SQLITE_OK);
  ASSERT_TRUE(Eventually([&] { return snapshot.done(); }));
  EXPECT_THAT(snapshot, IsError(ErrorCode::kBusy, _));
  const GateStats gate = Info(path_).gate;
  EXPECT_EQ(gate.own_waits, 1u);
  EXPECT_EQ(gate.yields, 1u);
  EXPECT_EQ(gate.stall_timeouts, 0u);
}

// Statements built to run long or allocate much inside one call, where a
// progress handler cannot stop them. Each must end inside the lease with a
// clean error (or, for the slowest allowed one, succeed), the host writer
// beside them never failing.
TEST_F(HostWaitsTest, AnInjectionCannotOutliveItsLease) {
  Fill("WAL");
  struct Case {
    const char* sql;
    bool succeeds;
  };
  const Case cases[] = {
      {"INSERT INTO t(v) SELECT instr(printf('%.*c', 40000000, 'a'), "
       "printf('%.*c', 30000, 'a') || 'b')", false},
      {"INSERT INTO t(v) SELECT replace(printf('%.*c', 16000000, 'a'), "
       "printf('%.*c', 30000, 'a') || 'b', '')", false},
      {"INSERT INTO t(v) SELECT printf('%.*c', 999999990, 'x')", false},
      {"INSERT INTO t(v) SELECT format('%.*c', 999999990, 'x')", false},
      {"INSERT INTO t(v) SELECT randomblob(999999999)", false},
      {"INSERT INTO t(v) SELECT zeroblob(999999999)", false},
      {"INSERT INTO t(v) SELECT group_concat(hex(zeroblob(500000))) "
       "FROM (WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c "
       "WHERE x < 100) SELECT x FROM c)", false},
      {"INSERT INTO t(v) WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL "
       "SELECT x + 1 FROM c) SELECT count(*) FROM c", false},
      // The slowest allowed call found: linear work on a value at the
      // length limit.
      {"INSERT INTO t(v) SELECT length(upper(hex(zeroblob(8000000))))", true},
  };
  std::atomic<bool> stop{false};
  std::atomic<int> host_errors{0};
  std::atomic<int> host_commits{0};
  Conn writer(path_);
  std::jthread host([&] {
    while (!stop) {
      if (writer.Exec("INSERT INTO t(v) VALUES (randomblob(100))") !=
          SQLITE_OK) {
        ++host_errors;
      }
      ++host_commits;
    }
  });
  ASSERT_TRUE(Eventually([&] { return host_commits > 10; }));
  std::shared_ptr<Database> db = Find(path_);
  for (const Case& c : cases) {
    InjectRequest request;
    request.sql = c.sql;
    request.dry_run = true;
    auto r = Inject(*db, request);
    EXPECT_EQ(r.ok(), c.succeeds)
        << c.sql << ": " << (r.ok() ? "ran" : r.error().message);
    if (r.ok()) {
      EXPECT_LT(std::chrono::microseconds(r.value().gate_closed_us),
                db->lease_cap())
          << c.sql;
    }
  }
  stop = true;
  host.join();
  EXPECT_EQ(host_errors.load(), 0);
  const GateStats gate = Info(path_).gate;
  EXPECT_EQ(gate.stall_timeouts, 0u);
  EXPECT_LT(std::chrono::microseconds(gate.max_wait_us), db->max_stall());
}

// The list is the host's to extend.
TEST_F(HostWaitsTest, AnInjectionNamesTheFunctionItMayNotCall) {
  Fill("WAL");
  InjectRequest request;
  request.sql = "INSERT INTO t(v) SELECT instr('abc', 'b')";
  auto r = Inject(*Find(path_), request);
  ASSERT_THAT(r, IsError(ErrorCode::kForbidden, _));
  EXPECT_NE(r.error().message.find("instr"), std::string::npos)
      << r.error().message;
  EXPECT_NE(r.error().message.find("QUIESCE_INJECT_FUNCTIONS"),
            std::string::npos);
}

}  // namespace
}  // namespace quiesce::testing
