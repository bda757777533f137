// Snapshots of a live database: consistent as of one commit, with the
// generation that commit got, while the host keeps committing and
// checkpointing, and without a host error.
#include "snapshot.h"

#include <fcntl.h>
#include <signal.h>
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <fstream>
#include <mutex>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "context.h"
#include "image_check.h"
#include "live_snapshot_fixture.h"
#include "sha256.h"
#include "result_matchers.h"
#include "support.h"

namespace quiesce::testing {
namespace {

using Clock = std::chrono::steady_clock;

// In every journal mode, in normal and exclusive locking mode.
class SnapshotTest : public LiveSnapshotTest {};

TEST_P(SnapshotTest, ImageHoldsExactlyTheCommittedState) {
  ASSERT_EQ(Info(path_).locking_mode, GetParam().exclusive
                                          ? LockingMode::kExclusive
                                          : LockingMode::kNormal);
  for (int n = 1; n <= 50; ++n) host_->Must(Insert(n, 700));
  const std::string image = dir_.File("snap.db");
  auto r = SnapshotTo(path_, image);
  ASSERT_OK(r);
  EXPECT_EQ(CheckImage(image), 50);
  const DatabaseInfo info = Info(path_);
  EXPECT_EQ(r.value().point.generation, base_ + 50);
  EXPECT_EQ(r.value().point.generation, info.generation);
  EXPECT_EQ(r.value().point.position, info.position);
  EXPECT_EQ(r.value().sha256, FileSha256(image));
  EXPECT_EQ(r.value().bytes,
            uint64_t{r.value().page_count} * r.value().point.page_size);
  if (wal()) {
    EXPECT_GT(r.value().wal_frames, 0u);
  }
}

TEST_P(SnapshotTest, ConsistentWhileTheHostCommitsAndCheckpoints) {
  std::atomic<bool> stop{false};
  std::atomic<int> host_errors{0};
  std::atomic<int64_t> committed{0};
  // The host's connection, used from its own thread.
  std::thread writer([&] {
    const char* const kCheckpoints[] = {"PASSIVE", "FULL", "RESTART",
                                        "TRUNCATE"};
    host_->Must("PRAGMA wal_autocheckpoint=20; PRAGMA cache_size=10");
    for (int64_t n = 1; !stop.load(); ++n) {
      if (host_->Exec("BEGIN IMMEDIATE; " + Insert(n, 100 + (n * 37) % 6000) +
                      "; COMMIT") != SQLITE_OK) {
        ++host_errors;
        host_->Exec("ROLLBACK");
        break;
      }
      committed = n;
      if (wal() && n % 25 == 0 &&
          Checkpoint(kCheckpoints[(n / 25) % 4]) != 0) {
        ++host_errors;
      }
    }
  });
  int snapshots = 0;
  int64_t last = 0;
  // Snapshot while the writer runs: at least 15 snapshots and 400 commits
  // (a bound on the loop, not a timing assertion).
  const auto give_up = Clock::now() + std::chrono::seconds(120);
  while ((snapshots < 15 || committed.load() < 400) && host_errors == 0 &&
         Clock::now() < give_up) {
    const std::string image = dir_.File("s" + std::to_string(snapshots));
    auto r = SnapshotTo(path_, image);
    ASSERT_OK(r);
    const int64_t k = CheckImage(image);
    // Only the host writes: the image's prefix is its generation.
    EXPECT_EQ(static_cast<uint64_t>(k) + base_, r.value().point.generation);
    EXPECT_GE(k, last);
    last = k;
    std::remove(image.c_str());
    ++snapshots;
  }
  stop = true;
  writer.join();
  EXPECT_EQ(host_errors.load(), 0);
  EXPECT_GE(committed.load(), 400);
  EXPECT_EQ(Info(path_).gate.stall_timeouts, 0u);
}

// A snapshot that fails on its output (/dev/full, or a client that stops
// reading its pipe) leaves nothing held: the gate is open, and a write and
// a TRUNCATE checkpoint (which needs every reader gone) succeed at once.
TEST_P(SnapshotTest, OutputErrorsAreReportedAndReleaseEverything) {
  host_->Must(Insert(1, 300000));
  const int full = open("/dev/full", O_WRONLY);
  ASSERT_GE(full, 0);
  int pipe_fds[2];
  ASSERT_EQ(pipe(pipe_fds), 0);  // nobody reads pipe_fds[0]
  const struct {
    int fd;
    int ms;
    ErrorCode code;
  } kOutputs[] = {{full, 10000, ErrorCode::kIoError},
                  {pipe_fds[1], 300, ErrorCode::kTimeout}};
  int n = 2;
  for (const auto& output : kOutputs) {
    SnapshotOptions opt;
    opt.deadline = Clock::now() + std::chrono::milliseconds(output.ms);
    auto r = WriteSnapshot(*Find(path_), output.fd, opt);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, output.code) << r.error().message;
    EXPECT_FALSE(Info(path_).gate_closed);
    host_->Must(Insert(n++, 10));
    if (wal()) {
      EXPECT_EQ(Checkpoint("TRUNCATE"), 0);
    }
  }
  close(full);
  close(pipe_fds[0]);
  close(pipe_fds[1]);
}

INSTANTIATE_TEST_SUITE_P(
    Modes, SnapshotTest,
    ::testing::ValuesIn(SnapshotModes(/*normal=*/true, /*exclusive=*/true)),
    ModeName);

TEST(Snapshot, AnEmptyWalMeansTheDatabaseFileIsTheImage) {
  TempDir dir;
  const std::string path = dir.File("e.db");
  {
    Conn setup(path);
    setup.Must("PRAGMA journal_mode=WAL; CREATE TABLE seq(n INTEGER PRIMARY "
               "KEY, pad BLOB); INSERT INTO seq VALUES (1, 'x'), (2, 'y')");
  }  // the last close checkpoints and leaves no frames
  Conn reopened(path);
  reopened.Must("SELECT count(*) FROM seq");  // read only: the WAL is empty
  const std::string image = dir.File("e.img");
  auto r = SnapshotTo(path, image);
  ASSERT_OK(r);
  EXPECT_GT(r.value().page_count, 1u);
  EXPECT_EQ(CheckImage(image), 2);
}

TEST(Sha256, KnownVectors) {
  Sha256 empty;
  EXPECT_EQ(empty.FinishHex(),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  Sha256 abc;
  abc.Update("abc", 3);
  EXPECT_EQ(abc.FinishHex(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  Sha256 two_blocks;
  const std::string msg =
      "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
  for (char ch : msg) two_blocks.Update(&ch, 1);  // byte by byte
  EXPECT_EQ(two_blocks.FinishHex(),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

TEST(Sha256, HardwareAndPortableAgreeOnEveryLength) {
  std::string data;
  uint32_t x = 12345;
  for (int i = 0; i < 5000; ++i) {
    x = x * 1664525 + 1013904223;
    data.push_back(static_cast<char>(x >> 24));
  }
  for (size_t len : {0, 1, 55, 56, 63, 64, 65, 127, 128, 1000, 4999, 5000}) {
    Sha256 fast, portable(/*portable=*/true);
    fast.Update(data.data(), len / 2);
    fast.Update(data.data() + len / 2, len - len / 2);
    portable.Update(data.data(), len);
    EXPECT_EQ(fast.FinishHex(), portable.FinishHex()) << len;
  }
}

}  // namespace
}  // namespace quiesce::testing

namespace quiesce::testing {
namespace {

// Random transactions of every kind from host threads and from another
// process, while snapshots are taken in a loop. Each transaction appends
// the next sequence number, so every image must hold exactly 1..k.
class SnapshotTortureTest : public ::testing::TestWithParam<const char*> {};

TEST_P(SnapshotTortureTest, EveryImageIsACommittedPrefix) {
  if (std::system("command -v sqlite3 >/dev/null") != 0) {
    GTEST_SKIP() << "the sqlite3 command (Debian package sqlite3) is missing";
  }
  const bool wal = std::string(GetParam()) == "wal";
  TempDir dir;
  const std::string path = dir.File("torture.db");
  {
    Conn setup(path);
    setup.Must("PRAGMA auto_vacuum=INCREMENTAL");
    setup.Must(std::string("PRAGMA journal_mode=") + GetParam());
    setup.Must("CREATE TABLE seq(n INTEGER PRIMARY KEY, pad BLOB)");
  }
  Conn keep(path);
  const char* seconds_env = std::getenv("QUIESCE_TORTURE_SECONDS");
  const int seconds = seconds_env ? std::atoi(seconds_env) : 3;
  const auto end = Clock::now() + std::chrono::seconds(seconds);
  std::atomic<int> host_errors{0};
  std::mutex serial;  // host writers are serialised, as Gecko's are
  auto host = [&](int seed) {
    Conn c(path);
    // The other process's locks are not quiesce's: against those the host
    // needs a busy handler of its own, as any SQLite user does.
    sqlite3_busy_timeout(c.get(), 10000);
    c.Must("PRAGMA journal_size_limit=65536; PRAGMA cache_size=20");
    unsigned x = static_cast<unsigned>(seed);
    while (Clock::now() < end) {
      x = x * 1103515245 + 12345;
      std::lock_guard<std::mutex> lock(serial);
      const TortureStep step = RandomTortureStep(x, wal, "BEGIN IMMEDIATE");
      if (step.checkpoint != nullptr) {
        // Busy when it could not finish (first column 1): an error here.
        const std::string sql =
            std::string("PRAGMA wal_checkpoint(") + step.checkpoint + ")";
        sqlite3_stmt* st = nullptr;
        sqlite3_prepare_v2(c.get(), sql.c_str(), -1, &st, nullptr);
        if (sqlite3_step(st) != SQLITE_ROW || sqlite3_column_int(st, 0) != 0) {
          ++host_errors;
        }
        sqlite3_finalize(st);
      } else if (!step.sql.empty() && c.Exec(step.sql) != SQLITE_OK) {
        ++host_errors;
        c.Exec("ROLLBACK");
      }
    }
  };
  // Another process appends too, with its own busy timeout (it is not the
  // host: quiesce promises nothing about it). Two host threads taking the
  // write lock back to back can starve its polling busy handler for the
  // whole run (rollback mode on a slow machine), so a failed attempt is
  // logged and retried, and the snapshot loop goes on after the host
  // threads stop until the shim has seen the other process commit.
  const std::string foreign_log = dir.File("foreign.log");
  const std::string foreign_pid = dir.File("foreign.pid");
  const std::string foreign =
      "env -u LD_PRELOAD sh -c 'echo $$ > " + foreign_pid +
      "; while [ ! -e " + dir.File("stop") + " ]; do sqlite3 " + path +
      " \"PRAGMA busy_timeout=5000; INSERT INTO seq SELECT max(n)+1, "
      "randomblob(300) FROM seq\" >/dev/null 2>>" + foreign_log +
      "; done' &";
  ASSERT_EQ(std::system(foreign.c_str()), 0);
  std::thread h1(host, 1), h2(host, 2);
  int snapshots = 0;
  int64_t last = 0;
  // Past `end` only the other process writes; this bound is a failure
  // report, not a pace: it is reached only if that process never commits.
  const auto give_up = end + std::chrono::seconds(60);
  while (Clock::now() < end ||
         (Info(path).foreign_commits == 0 && Clock::now() < give_up)) {
    const std::string image = dir.File("t.img");
    auto r = SnapshotTo(path, image);
    EXPECT_OK(r);
    if (!r.ok()) break;  // the writers still stop at `end`
    const int64_t k = CheckImage(image);
    EXPECT_GE(k, last) << "an image went back in time";
    last = k;
    ++snapshots;
  }
  h1.join();
  h2.join();
  std::ofstream(dir.File("stop")).put('x');
  // The loop's shell ends after its current sqlite3; wait for that before
  // the directory goes away under it.
  pid_t pid = 0;
  std::ifstream(foreign_pid) >> pid;
  ASSERT_GT(pid, 0);
  while (kill(pid, 0) == 0) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(host_errors.load(), 0);
  EXPECT_GT(snapshots, 3);
  const DatabaseInfo info = Info(path);
  EXPECT_GT(info.foreign_commits, 0u)
      << "the other process never committed in 60 s; its errors:\n"
      << std::ifstream(foreign_log).rdbuf();
  EXPECT_EQ(info.gate.stall_timeouts, 0u);
}

INSTANTIATE_TEST_SUITE_P(Modes, SnapshotTortureTest,
                         ::testing::Values("wal", "delete"));

// The host closes its connection while a snapshot is being written. Normal
// locking: the snapshot's own connection keeps the database open until it
// is done. Exclusive locking: the host's close checkpoints, which waits for
// the copy, and deletes the WAL; the copy reads descriptors of its own. Its
// client reads slowly, so once the close has waited kClientYield the copy
// gives up rather than hold the host (unless it finished first).
TEST(SnapshotLifetime, TheHostClosingMidSnapshotIsHarmless) {
  for (const bool exclusive : {false, true}) {
    SCOPED_TRACE(exclusive ? "locking_mode=EXCLUSIVE" : "normal locking");
    TempDir dir;
    const std::string path = dir.File("closing.db");
    auto host = std::make_unique<Conn>(path);
    if (exclusive) host->Must("PRAGMA locking_mode=EXCLUSIVE");
    host->Must("PRAGMA journal_mode=WAL; CREATE TABLE seq(n INTEGER PRIMARY "
               "KEY, pad BLOB)");
    for (int n = 1; n <= 40; ++n) host->Must(Insert(n, 50000));
    auto db = Find(path);
    int pipe_fds[2];
    ASSERT_EQ(pipe(pipe_fds), 0);
    const std::string image = dir.File("closing.img");
    std::thread reader([&] {  // a slow client
      FILE* out = fopen(image.c_str(), "wb");
      char buf[4096];
      ssize_t n;
      while ((n = read(pipe_fds[0], buf, sizeof(buf))) > 0) {
        fwrite(buf, 1, static_cast<size_t>(n), out);
        std::this_thread::sleep_for(std::chrono::microseconds(200));
      }
      fclose(out);
    });
    std::thread closer([&] {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      host.reset();
    });
    auto r = WriteSnapshot(*db, pipe_fds[1], Within(60));
    close(pipe_fds[1]);
    closer.join();
    reader.join();
    close(pipe_fds[0]);
    if (exclusive && !r.ok()) {
      EXPECT_EQ(r.error().code, ErrorCode::kBusy) << r.error().message;
      EXPECT_EQ(db->Info().gate.yields, 1u);
    } else {
      ASSERT_OK(r);
      EXPECT_EQ(CheckImage(image), 40);
    }
    EXPECT_EQ(db->Info().gate.stall_timeouts, 0u);
    db.reset();
    EXPECT_EQ(Context::Get()->FindByPath(path), nullptr)
        << "the database outlived every connection";
    // The host's close went through whole.
    Conn check(path, "unix");
    EXPECT_EQ(check.Int("SELECT count(*) FROM seq"), 40);
    EXPECT_EQ(check.Text("PRAGMA integrity_check"), "ok");
  }
}

}  // namespace
}  // namespace quiesce::testing
