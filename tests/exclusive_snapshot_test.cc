// Snapshots of databases the host opened with locking_mode=EXCLUSIVE, where
// no second connection can read: the write gate closes at a commit
// boundary and the files are copied raw. Each image must hold exactly the
// commits up to the generation it reports, while the host keeps writing and
// never sees an error.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sqlite3.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <string>
#include <thread>

#include "context.h"
#include "image_check.h"
#include "live_snapshot_fixture.h"
#include "snapshot.h"
#include "result_matchers.h"
#include "support.h"

namespace quiesce::testing {
namespace {

using Clock = std::chrono::steady_clock;


// Exclusive locking only (the shared cases are in snapshot_test.cc).
class ExclusiveSnapshotTest : public LiveSnapshotTest {};

// While the copy runs: in WAL mode host commits append frames past the
// copied prefix and go on, and a checkpoint (which writes the database
// file) waits; in rollback mode a commit waits. Either way the image is the
// state at the point, and the host's statements succeed.
TEST_P(ExclusiveSnapshotTest, WritesThatWouldChangeTheCopyWaitForIt) {
  host_->Must(Insert(1, 400000));  // more than a pipe holds
  const uint64_t point = Info(path_).generation;
  int pipe_fds[2];
  ASSERT_EQ(pipe(pipe_fds), 0);
  std::atomic<bool> snapshot_done{false};
  Result<SnapshotResult> result = Error{ErrorCode::kInternal, "not run"};
  std::thread snapshot([&] {
    result = WriteSnapshot(*Find(path_), pipe_fds[1], Within(30));
    close(pipe_fds[1]);
    snapshot_done = true;
  });
  // The first bytes in the pipe: the point is pinned, and the copy is
  // stuck until someone reads.
  pollfd p{pipe_fds[0], POLLIN, 0};
  ASSERT_EQ(poll(&p, 1, 20000), 1);
  const uint64_t waits_before = Info(path_).gate.waits;
  std::atomic<int> rc{-1};
  std::thread host([&] {
    if (wal()) {
      // Not held back: returns while the copy is still stuck.
      host_->Must(Insert(2, 100));
      EXPECT_FALSE(snapshot_done.load());
      rc = Checkpoint("TRUNCATE");  // held back until the copy ends
    } else {
      rc = host_->Exec(Insert(2, 100));  // held back until the copy ends
    }
  });
  EXPECT_TRUE(Eventually([&] { return Info(path_).gate.waits > waits_before; }))
      << "no host write waited at the gate";
  EXPECT_EQ(rc.load(), -1) << "a write went ahead during the copy";
  const std::string image = dir_.File("image.db");
  {
    FILE* out = fopen(image.c_str(), "wb");
    char buf[65536];
    ssize_t n;
    while ((n = read(pipe_fds[0], buf, sizeof(buf))) > 0) {
      fwrite(buf, 1, static_cast<size_t>(n), out);
    }
    fclose(out);
  }
  snapshot.join();
  host.join();
  close(pipe_fds[0]);
  ASSERT_OK(result);
  EXPECT_EQ(rc.load(), 0);
  EXPECT_EQ(result.value().point.generation, point);
  EXPECT_EQ(CheckImage(image), 1);
  EXPECT_EQ(host_->Int("SELECT count(*) FROM seq"), 2);
  EXPECT_EQ(Info(path_).gate.stall_timeouts, 0u);
}

// quiesce's own descriptors: SQLite parks a closed one while the host holds
// its locks and reuses it at the next open, so snapshots in a row leave at
// most one behind.
TEST_P(ExclusiveSnapshotTest, SnapshotsInARowLeaveNoDescriptorsBehind) {
  host_->Must(Insert(1, 10000));
  auto open_fds = [] {
    size_t n = 0;
    for (const auto& entry :
         std::filesystem::directory_iterator("/proc/self/fd")) {
      (void)entry;
      ++n;
    }
    return n;
  };
  const std::string image = dir_.File("again.db");
  ASSERT_TRUE(SnapshotTo(path_, image).ok());
  const size_t after_one = open_fds();
  for (int i = 0; i < 20; ++i) {
    host_->Must(Insert(i + 2, 100));
    auto r = SnapshotTo(path_, image);
    ASSERT_OK(r);
  }
  EXPECT_EQ(open_fds(), after_one);
  EXPECT_EQ(CheckImage(image), 21);
}

INSTANTIATE_TEST_SUITE_P(
    Modes, ExclusiveSnapshotTest,
    ::testing::ValuesIn(SnapshotModes(/*normal=*/false, /*exclusive=*/true)),
    ModeName);

// A rollback transaction that has written the database file (a spill) must
// end before the point: the drain waits for it, and says what held it.
TEST(ExclusiveSnapshot, AnOpenTransactionThatWroteTheFileHoldsTheDrain) {
  TempDir dir;
  const std::string path = dir.File("spill.db");
  Conn host(path);
  host.Must("PRAGMA locking_mode=EXCLUSIVE; PRAGMA journal_mode=PERSIST; "
            "PRAGMA cache_size=5");
  host.Must("CREATE TABLE seq(n INTEGER PRIMARY KEY, pad BLOB)");
  host.Must(Insert(1, 100));
  host.Must("BEGIN");
  for (int n = 2; n <= 200; ++n) host.Must(Insert(n, 3000));  // spills
  SnapshotOptions opt;
  opt.deadline = Clock::now() + std::chrono::milliseconds(300);
  auto r = WriteSnapshot(*Find(path), STDERR_FILENO, opt);
  ASSERT_THAT(r, IsError(ErrorCode::kTimeout, _));
  EXPECT_NE(r.error().message.find("locking_mode=EXCLUSIVE"),
            std::string::npos)
      << r.error().message;
  host.Must("COMMIT");
  const std::string image = dir.File("after.db");
  auto after = SnapshotTo(path, image);
  ASSERT_OK(after);
  EXPECT_EQ(CheckImage(image), 200);
  // A rolled-back spill ends the transaction too.
  host.Must("BEGIN");
  for (int n = 201; n <= 400; ++n) host.Must(Insert(n, 3000));
  host.Must("ROLLBACK");
  auto rolled_back = SnapshotTo(path, image);
  ASSERT_OK(rolled_back);
  EXPECT_EQ(CheckImage(image), 200);
}

// The host opened a WAL database whose commits are still in the WAL (from
// an earlier session) and has not committed since: the shim saw no commit,
// and the cut is what the host's own recovery found.
TEST(ExclusiveSnapshot, CommitsFromAnEarlierSessionAreFoundInTheWal) {
  TempDir dir;
  const std::string earlier = dir.File("earlier.db");
  const std::string path = dir.File("reopened.db");
  {
    Conn writer(earlier, "unix");
    writer.Must("PRAGMA journal_mode=WAL; PRAGMA wal_autocheckpoint=0; "
                "PRAGMA cache_size=5");
    writer.Must("CREATE TABLE seq(n INTEGER PRIMARY KEY, pad BLOB)");
    for (int n = 1; n <= 30; ++n) writer.Must(Insert(n, 2000));
    // A rolled-back transaction that spilled: valid frames past the last
    // commit, with no commit frame of their own.
    writer.Must("BEGIN");
    for (int n = 31; n <= 90; ++n) writer.Must(Insert(n, 3000));
    writer.Must("ROLLBACK");
    // Copy the files while the writer is idle and still has them open
    // (its close would checkpoint them away).
    std::filesystem::copy_file(earlier, path);
    std::filesystem::copy_file(earlier + "-wal", path + "-wal");
  }
  Conn host(path);
  host.Must("PRAGMA locking_mode=EXCLUSIVE");
  ASSERT_EQ(host.Int("SELECT count(*) FROM seq"), 30);  // runs recovery
  const uint64_t generation = Info(path).generation;
  const std::string image = dir.File("image.db");
  auto r = SnapshotTo(path, image);
  ASSERT_OK(r);
  EXPECT_EQ(CheckImage(image), 30);
  EXPECT_EQ(r.value().point.generation, generation);
  EXPECT_TRUE(r.value().point.position.wal);
  EXPECT_GT(r.value().point.position.mx_frame, 30u);
  EXPECT_GT(r.value().wal_frames, 0u);
  // The host goes on from there.
  host.Must(Insert(31, 10));
  auto next = SnapshotTo(path, image);
  ASSERT_OK(next);
  EXPECT_EQ(CheckImage(image), 31);
  EXPECT_EQ(next.value().point.generation, generation + 1);
}

// Random transactions of every kind from two host threads sharing the one
// connection exclusive locking allows, while snapshots are taken in a loop:
// every image holds exactly 1..k, k being its generation's count.
class ExclusiveTortureTest : public ::testing::TestWithParam<const char*> {};

TEST_P(ExclusiveTortureTest, EveryImageIsTheCommitOfItsGeneration) {
  const bool wal = std::string(GetParam()) == "wal";
  TempDir dir;
  const std::string path = dir.File("torture.db");
  Conn c(path);
  c.Must("PRAGMA locking_mode=EXCLUSIVE; PRAGMA auto_vacuum=INCREMENTAL");
  c.Must(std::string("PRAGMA journal_mode=") + GetParam());
  c.Must("PRAGMA journal_size_limit=65536; PRAGMA cache_size=20; "
         "PRAGMA wal_autocheckpoint=50");
  c.Must("CREATE TABLE seq(n INTEGER PRIMARY KEY, pad BLOB)");
  const uint64_t base = Info(path).generation;
  const char* seconds_env = std::getenv("QUIESCE_TORTURE_SECONDS");
  const int seconds = seconds_env ? std::atoi(seconds_env) : 3;
  const auto end = Clock::now() + std::chrono::seconds(seconds);
  std::atomic<int> host_errors{0};
  std::mutex serial;  // host writers are serialised, as Gecko's are
  auto host = [&](int seed) {
    unsigned x = static_cast<unsigned>(seed);
    while (Clock::now() < end) {
      x = x * 1103515245 + 12345;
      std::lock_guard<std::mutex> lock(serial);
      const TortureStep step = RandomTortureStep(x, wal, "BEGIN");
      if (step.checkpoint != nullptr) {
        if (c.Int(std::string("PRAGMA wal_checkpoint(") + step.checkpoint +
                  ")") != 0) {
          ++host_errors;
        }
      } else if (!step.sql.empty() && c.Exec(step.sql) != SQLITE_OK) {
        ++host_errors;
        c.Exec("ROLLBACK");
      }
    }
  };
  std::thread h1(host, 1), h2(host, 2);
  int snapshots = 0;
  while (Clock::now() < end) {
    const std::string image = dir.File("t.img");
    auto r = SnapshotTo(path, image);
    EXPECT_OK(r);
    if (!r.ok()) break;  // the writers still stop at `end`
    EXPECT_EQ(static_cast<uint64_t>(CheckImage(image)) + base,
              r.value().point.generation);
    ++snapshots;
  }
  h1.join();
  h2.join();
  EXPECT_EQ(host_errors.load(), 0);
  EXPECT_GT(snapshots, 3);
  EXPECT_EQ(Info(path).gate.stall_timeouts, 0u);
}

INSTANTIATE_TEST_SUITE_P(Modes, ExclusiveTortureTest,
                         ::testing::Values("wal", "delete", "truncate",
                                           "persist"));

}  // namespace
}  // namespace quiesce::testing
