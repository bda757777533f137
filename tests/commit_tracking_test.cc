// The generation counts committed write transactions made through the shim,
// exactly, in every journal and locking mode, over "unix" and "unix-excl".
#include <gtest/gtest.h>

#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "context.h"
#include "support.h"

namespace quiesce::testing {
namespace {

struct Mode {
  const char* journal;  // PRAGMA journal_mode value
  const char* locking;  // PRAGMA locking_mode value
  const char* vfs;      // shim name
};

std::string ModeName(const ::testing::TestParamInfo<Mode>& info) {
  std::string vfs = info.param.vfs;
  for (char& c : vfs) {
    if (c == '-') c = '_';
  }
  return std::string(info.param.journal) + "_" + info.param.locking + "_" +
         vfs;
}

class CommitTrackingTest : public ::testing::TestWithParam<Mode> {
 protected:
  void SetUp() override {
    path_ = dir_.File("t.db");
    conn_ = std::make_unique<Conn>(path_, GetParam().vfs);
    conn_->Must(std::string("PRAGMA locking_mode=") + GetParam().locking);
    EXPECT_EQ(conn_->Text(std::string("PRAGMA journal_mode=") +
                          GetParam().journal),
              GetParam().journal);
    conn_->Must("CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB)");
    base_ = Info(path_).generation;
  }

  uint64_t Generation() { return Info(path_).generation - base_; }
  bool exclusive() const {
    return std::string(GetParam().locking) == "exclusive";
  }
  bool wal() const { return std::string(GetParam().journal) == "wal"; }

  TempDir dir_;
  std::string path_;
  std::unique_ptr<Conn> conn_;
  uint64_t base_ = 0;
};

TEST_P(CommitTrackingTest, CountsEachCommitOnce) {
  for (int i = 0; i < 10; ++i) {
    conn_->Must("INSERT INTO t(v) VALUES (randomblob(100))");
  }
  EXPECT_EQ(Generation(), 10u);
  conn_->Must("BEGIN; INSERT INTO t(v) VALUES (1); INSERT INTO t(v) "
              "VALUES (2); COMMIT");
  EXPECT_EQ(Generation(), 11u);
}

TEST_P(CommitTrackingTest, IgnoresReadsEmptyCommitsAndRollbacks) {
  conn_->Must("INSERT INTO t(v) VALUES (1)");
  ASSERT_EQ(Generation(), 1u);
  conn_->Must("SELECT count(*) FROM t");
  conn_->Must("BEGIN; SELECT * FROM t; COMMIT");
  conn_->Must("BEGIN IMMEDIATE; COMMIT");
  conn_->Must("BEGIN; INSERT INTO t(v) VALUES (2); ROLLBACK");
  conn_->Must("UPDATE t SET v = v WHERE id = -1");  // changes nothing
  EXPECT_EQ(Generation(), 1u);
}

TEST_P(CommitTrackingTest, SavepointsCountAsTheirTransaction) {
  conn_->Must("BEGIN; INSERT INTO t(v) VALUES (1); SAVEPOINT a; "
              "INSERT INTO t(v) VALUES (2); ROLLBACK TO a; RELEASE a; COMMIT");
  EXPECT_EQ(Generation(), 1u);
  conn_->Must("SAVEPOINT outer_sp; INSERT INTO t(v) VALUES (3); "
              "RELEASE outer_sp");
  EXPECT_EQ(Generation(), 2u);
  EXPECT_EQ(conn_->Int("SELECT count(*) FROM t"), 2);
  if (exclusive()) return;
  // A savepoint rolled back in full and then released still commits the
  // restored pages: SQLite itself counts it (data_version moves for other
  // connections), and so must the shim.
  Conn other(path_, GetParam().vfs);
  const int64_t version = other.Int("PRAGMA data_version");
  conn_->Must("SAVEPOINT gone; INSERT INTO t(v) VALUES (4); "
              "ROLLBACK TO gone; RELEASE gone");
  const bool sqlite_saw_commit = other.Int("PRAGMA data_version") != version;
  EXPECT_EQ(Generation(), sqlite_saw_commit ? 3u : 2u);
}

TEST_P(CommitTrackingTest, SpilledThenRolledBackIsNoCommit) {
  conn_->Must("PRAGMA cache_size=2");  // forces the pager to spill
  conn_->Must("INSERT INTO t(v) VALUES (randomblob(10))");
  ASSERT_EQ(Generation(), 1u);
  conn_->Must("BEGIN");
  for (int i = 0; i < 200; ++i) {
    conn_->Must("INSERT INTO t(v) VALUES (randomblob(3000))");
  }
  conn_->Must("ROLLBACK");
  EXPECT_EQ(Generation(), 1u);
  conn_->Must("BEGIN");
  for (int i = 0; i < 200; ++i) {
    conn_->Must("INSERT INTO t(v) VALUES (randomblob(3000))");
  }
  conn_->Must("COMMIT");
  EXPECT_EQ(Generation(), 2u);
  EXPECT_EQ(conn_->Text("PRAGMA integrity_check"), "ok");
}

TEST_P(CommitTrackingTest, EventsComeInCommitOrder) {
  for (int i = 0; i < 20; ++i) {
    conn_->Must("INSERT INTO t(v) VALUES (randomblob(50))");
  }
  auto db = Find(path_);
  bool lost = true;
  std::vector<CommitEvent> events = db->EventsAfter(0, 1000, &lost);
  EXPECT_FALSE(lost);
  std::vector<uint64_t> generations;
  for (const CommitEvent& e : events) {
    EXPECT_FALSE(e.foreign);
    if (e.generation > base_) generations.push_back(e.generation - base_);
  }
  std::vector<uint64_t> want;
  for (uint64_t g = 1; g <= 20; ++g) want.push_back(g);
  EXPECT_EQ(generations, want);
}

TEST_P(CommitTrackingTest, PositionMatchesTheFiles) {
  for (int i = 0; i < 5; ++i) {
    conn_->Must("INSERT INTO t(v) VALUES (randomblob(500))");
  }
  DatabaseInfo info = Info(path_);
  EXPECT_EQ(info.position.wal, wal());
  EXPECT_EQ(info.journal_mode == JournalMode::kWal, wal());
  if (wal()) {
    // wal_checkpoint reports the WAL's frame count as its second column.
    sqlite3_stmt* stmt = nullptr;
    ASSERT_EQ(sqlite3_prepare_v2(conn_->get(), "PRAGMA wal_checkpoint(PASSIVE)",
                                 -1, &stmt, nullptr),
              SQLITE_OK);
    ASSERT_EQ(sqlite3_step(stmt), SQLITE_ROW);
    EXPECT_EQ(static_cast<uint32_t>(sqlite3_column_int(stmt, 1)),
              info.position.mx_frame);
    sqlite3_finalize(stmt);
  } else {
    // The change counter on disk is the one the shim reports. Close first:
    // closing any descriptor of the file would drop the connection's locks.
    conn_.reset();
    FILE* f = fopen(path_.c_str(), "rb");
    ASSERT_NE(f, nullptr);
    unsigned char hdr[100];
    ASSERT_EQ(fread(hdr, 1, sizeof(hdr), f), sizeof(hdr));
    fclose(f);
    const uint32_t counter = (uint32_t{hdr[24]} << 24) |
                             (uint32_t{hdr[25]} << 16) |
                             (uint32_t{hdr[26]} << 8) | hdr[27];
    EXPECT_EQ(info.position.change_counter, counter);
    const uint32_t pages = (uint32_t{hdr[28]} << 24) |
                           (uint32_t{hdr[29]} << 16) |
                           (uint32_t{hdr[30]} << 8) | hdr[31];
    EXPECT_EQ(info.db_pages, pages);
  }
  EXPECT_EQ(info.locking_mode == LockingMode::kExclusive, exclusive());
}

// In rollback mode the checkpoints are no-ops: still no commit, none
// counted.
TEST_P(CommitTrackingTest, CheckpointsOfEveryKindAreNotCommits) {
  conn_->Must("PRAGMA wal_autocheckpoint=10; PRAGMA journal_size_limit=0");
  int commits = 0;
  for (const char* kind : {"PASSIVE", "FULL", "RESTART", "TRUNCATE"}) {
    for (int i = 0; i < 25; ++i) {  // crosses the auto-checkpoint threshold
      conn_->Must("INSERT INTO t(v) VALUES (randomblob(2000))");
      ++commits;
    }
    conn_->Must(std::string("PRAGMA wal_checkpoint(") + kind + ")");
    // The next write restarts the WAL from its start.
    conn_->Must("INSERT INTO t(v) VALUES (1)");
    ++commits;
    EXPECT_EQ(Generation(), static_cast<uint64_t>(commits)) << kind;
  }
  if (exclusive() || !wal()) {
    // Rollback mode has none; locking_mode=EXCLUSIVE keeps the wal-index
    // in heap memory and takes no xShmLock: the shim sees none to count.
    EXPECT_EQ(Info(path_).checkpoints, 0u);
  } else {
    // The four explicit ones, and the automatic ones past the threshold.
    EXPECT_GE(Info(path_).checkpoints, 4u);
  }
  EXPECT_EQ(conn_->Text("PRAGMA integrity_check"), "ok");
}

TEST_P(CommitTrackingTest, IncrementalVacuumIsOneCommit) {
  conn_.reset();
  std::remove(path_.c_str());
  std::remove((path_ + "-wal").c_str());
  conn_ = std::make_unique<Conn>(path_, GetParam().vfs);
  conn_->Must("PRAGMA auto_vacuum=INCREMENTAL");
  conn_->Must(std::string("PRAGMA locking_mode=") + GetParam().locking);
  conn_->Must(std::string("PRAGMA journal_mode=") + GetParam().journal);
  conn_->Must("CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB)");
  conn_->Must("INSERT INTO t(v) SELECT randomblob(4000) FROM "
              "(WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c "
              "WHERE x < 50) SELECT x FROM c)");
  conn_->Must("DELETE FROM t");
  const uint64_t before = Info(path_).generation;
  ASSERT_GT(conn_->Int("PRAGMA freelist_count"), 0);
  conn_->Must("PRAGMA incremental_vacuum");
  EXPECT_EQ(conn_->Int("PRAGMA freelist_count"), 0);
  EXPECT_EQ(Info(path_).generation, before + 1);
}

// Exclusive locking allows one connection: there the threads share it
// (SQLite serializes them), which still interleaves their commits.
TEST_P(CommitTrackingTest, ManyThreadsManyConnections) {
  constexpr int kThreads = 4;
  constexpr int kCommits = 40;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([this] {
      if (exclusive()) {
        for (int i = 0; i < kCommits; ++i) {
          EXPECT_EQ(sqlite3_exec(conn_->get(),
                                 "INSERT INTO t(v) VALUES (randomblob(100))",
                                 nullptr, nullptr, nullptr),
                    SQLITE_OK);
        }
        return;
      }
      Conn c(path_, GetParam().vfs);
      sqlite3_busy_timeout(c.get(), 10000);
      for (int i = 0; i < kCommits; ++i) {
        c.Must("INSERT INTO t(v) VALUES (randomblob(100))");
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(Generation(), static_cast<uint64_t>(kThreads * kCommits));
  EXPECT_EQ(conn_->Int("SELECT count(*) FROM t"), kThreads * kCommits);
  bool lost = true;
  auto events = Find(path_)->EventsAfter(0, 100000, &lost);
  uint64_t want = base_ + 1;
  for (const CommitEvent& e : events) {
    if (e.generation < base_ + 1) continue;
    EXPECT_EQ(e.generation, want++);
  }
  EXPECT_EQ(want, base_ + 1 + kThreads * kCommits);
}

TEST_P(CommitTrackingTest, HandlesAndLocksAreReported) {
  DatabaseInfo info = Info(path_);
  ASSERT_EQ(info.handles.size(), 1u);
  if (exclusive()) {
    EXPECT_EQ(info.handles[0].lock_level, SQLITE_LOCK_EXCLUSIVE);
  } else if (wal()) {
    EXPECT_EQ(info.handles[0].lock_level, SQLITE_LOCK_SHARED);
  } else {
    EXPECT_EQ(info.handles[0].lock_level, SQLITE_LOCK_NONE);
  }
  EXPECT_EQ(info.handles[0].shm_exclusive, 0);
  EXPECT_EQ(info.handles[0].shm_shared, 0);
}

INSTANTIATE_TEST_SUITE_P(
    AllModes, CommitTrackingTest,
    ::testing::Values(Mode{"delete", "normal", "quiesce"},
                      Mode{"truncate", "normal", "quiesce"},
                      Mode{"persist", "normal", "quiesce"},
                      Mode{"wal", "normal", "quiesce"},
                      Mode{"delete", "exclusive", "quiesce"},
                      Mode{"truncate", "exclusive", "quiesce"},
                      Mode{"persist", "exclusive", "quiesce"},
                      Mode{"wal", "exclusive", "quiesce"},
                      Mode{"delete", "normal", "quiesce-excl"},
                      Mode{"wal", "normal", "quiesce-excl"},
                      Mode{"wal", "exclusive", "quiesce-excl"}),
    ModeName);

TEST(CommitTrackingReopen, ReopenGetsANewId) {
  TempDir dir;
  const std::string path = dir.File("r.db");
  uint64_t first_id = 0;
  {
    Conn c(path);
    c.Must("CREATE TABLE t(x)");
    first_id = Info(path).id;
  }
  ASSERT_EQ(Context::Get()->FindByPath(path), nullptr);
  Conn c(path);
  EXPECT_NE(Info(path).id, first_id);
  EXPECT_EQ(Info(path).generation, 0u);
}

}  // namespace
}  // namespace quiesce::testing
