// snapshot, hold, release and inject over a real socket: the replies, the
// capabilities, and what happens to the host when a client misbehaves
// (disconnects mid-operation, lets its lease run out, stops reading).
#include <fcntl.h>
#include <poll.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <thread>

#include "server_fixture.h"
#include "sha256.h"

namespace quiesce::control {
namespace {

using quiesce::testing::Conn;
using quiesce::testing::Info;
using Clock = std::chrono::steady_clock;

const AccessPolicy kWritable{geteuid(), {}, "1"};

class QuiesceOpsTest : public ServerTest {
 protected:
  void Open(const char* mode = "wal") {
    path_ = dir_.File("live.db");
    host_ = std::make_unique<Conn>(path_);
    host_->Must(std::string("PRAGMA journal_mode=") + mode);
    host_->Must("CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB)");
    host_->Must("INSERT INTO t(v) VALUES (randomblob(300000))");
  }
  int64_t Rows() { return host_->Int("SELECT count(*) FROM t"); }

  // Waits, boundedly, for the gate to be open again.
  bool GateOpens() {
    for (auto until = Clock::now() + std::chrono::seconds(10);
         Clock::now() < until;) {
      if (!Info(path_).gate_closed) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return false;
  }

  std::string path_;
  std::unique_ptr<Conn> host_;
};

int TempFile(const std::string& path) {
  return open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0600);
}

TEST_F(QuiesceOpsTest, SnapshotWritesTheImageToTheClientsDescriptor) {
  Open();
  StartServer();
  auto client = Connect();
  const std::string image = dir_.File("image.db");
  const int fd = TempFile(image);
  Message reply;
  std::string error;
  ASSERT_EQ(client->Call("snapshot", {{"db", path_}}, &reply, kTimeoutMs,
                         &error, {fd}),
            Client::Status::kOk)
      << error;
  close(fd);
  ASSERT_TRUE(reply.ok) << reply.error_message;
  EXPECT_EQ(reply.result["generation"], Info(path_).generation);
  Conn copy(image, "unix", SQLITE_OPEN_READONLY);
  EXPECT_EQ(copy.Text("PRAGMA integrity_check"), "ok");
  EXPECT_EQ(copy.Int("SELECT count(*) FROM t"), 1);
  quiesce::Sha256 sha;
  FILE* f = fopen(image.c_str(), "rb");
  char buf[65536];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), f)) > 0) sha.Update(buf, n);
  fclose(f);
  EXPECT_EQ(reply.result["sha256"], sha.FinishHex());
}

// The first progress event goes out with the first pages, not 200 ms later:
// a client holding the point (bundle pack) releases the hold on it. Here
// the client reads none of the image: the copy stops when the pipe is
// full, after the first batch; the event must already be there.
TEST_F(QuiesceOpsTest, TheFirstProgressEventComesWithTheFirstPages) {
  Open();
  for (int i = 0; i < 20; ++i) {
    host_->Must("INSERT INTO t(v) VALUES (randomblob(100000))");
  }
  StartServer();
  auto client = Connect();
  int pipe_fds[2];
  ASSERT_EQ(pipe(pipe_fds), 0);
  // Room for the first batches of pages, not for the ~2.3 MB image.
  ASSERT_GE(fcntl(pipe_fds[1], F_SETPIPE_SZ, 1 << 20), 1 << 20);
  int64_t id;
  std::string error;
  ASSERT_EQ(client->Send("snapshot", {{"db", path_}, {"progress", true}},
                         {pipe_fds[1]}, &id, kTimeoutMs, &error),
            Client::Status::kOk)
      << error;
  close(pipe_fds[1]);
  Message first;
  ASSERT_EQ(client->Read(&first, 5000, &error), Client::Status::kOk)
      << "no progress event while the copy waits for its client: " << error;
  EXPECT_TRUE(first.is_event);
  EXPECT_EQ(first.event, "progress");
  EXPECT_LT(first.body.value("done", 0u), first.body.value("total", 0u));
  // Then the client reads the image, and the reply follows.
  char buf[65536];
  while (read(pipe_fds[0], buf, sizeof buf) > 0) {
  }
  close(pipe_fds[0]);
  Message reply;
  do {
    ASSERT_EQ(client->Read(&reply, kTimeoutMs, &error), Client::Status::kOk)
        << error;
  } while (reply.is_event);
  EXPECT_TRUE(reply.ok) << reply.error_message;
  EXPECT_EQ(reply.id, id);
}

// A reply to an earlier request that arrives while Call waits for its own
// is kept for Read, not dropped.
TEST_F(QuiesceOpsTest, CallKeepsAnEarlierRequestsReply) {
  Open();
  StartServer();
  auto client = Connect();
  int pipe_fds[2];
  ASSERT_EQ(pipe(pipe_fds), 0);
  int64_t id;
  std::string error;
  ASSERT_EQ(client->Send("snapshot", {{"db", path_}}, {pipe_fds[1]}, &id,
                         kTimeoutMs, &error),
            Client::Status::kOk)
      << error;
  close(pipe_fds[1]);
  char buf[65536];
  while (read(pipe_fds[0], buf, sizeof buf) > 0) {
  }
  close(pipe_fds[0]);
  // The image is out and the job has let go of the pipe: the reply is on
  // its way; wait until it is readable, so that Call meets it first.
  pollfd replied{client->fd(), POLLIN, 0};
  ASSERT_EQ(poll(&replied, 1, kTimeoutMs), 1);
  EXPECT_TRUE(Call(*client, "status", {{"db", path_}}).ok);
  Message reply;
  ASSERT_EQ(client->Read(&reply, 0, &error), Client::Status::kOk) << error;
  EXPECT_FALSE(reply.is_event);
  EXPECT_EQ(reply.id, id);
  EXPECT_TRUE(reply.ok) << reply.error_message;
}

TEST_F(QuiesceOpsTest, SnapshotNeedsAWritableDescriptor) {
  Open();
  StartServer();
  auto client = Connect();
  EXPECT_EQ(Call(*client, "snapshot", {{"db", path_}}).error_code,
            "bad_request");
  const int ro = open(path_.c_str(), O_RDONLY);
  Message reply;
  std::string error;
  client->Call("snapshot", {{"db", path_}}, &reply, kTimeoutMs, &error, {ro});
  close(ro);
  EXPECT_EQ(reply.error_code, "bad_request") << reply.error_message;
}

TEST_F(QuiesceOpsTest, AClientGoneMidSnapshotReleasesItsReadMark) {
  Open();
  for (int i = 0; i < 20; ++i) {
    host_->Must("INSERT INTO t(v) VALUES (randomblob(100000))");
  }
  StartServer();
  int pipe_fds[2];
  ASSERT_EQ(pipe(pipe_fds), 0);
  {
    auto client = Connect();
    int64_t id;
    std::string error;
    ASSERT_EQ(client->Send("snapshot", {{"db", path_}}, {pipe_fds[1]}, &id,
                           kTimeoutMs, &error),
              Client::Status::kOk);
    close(pipe_fds[1]);
    // The snapshot has begun once bytes reach the pipe (it then fills it
    // and waits on it); then the client dies.
    pollfd started{pipe_fds[0], POLLIN, 0};
    ASSERT_EQ(poll(&started, 1, kTimeoutMs), 1) << "the snapshot never began";
  }
  // Its job is cancelled: the read mark goes, and a TRUNCATE checkpoint
  // (which needs every reader gone) succeeds.
  bool checkpointed = false;
  for (auto until = Clock::now() + std::chrono::seconds(10);
       !checkpointed && Clock::now() < until;) {
    checkpointed = host_->Int("PRAGMA wal_checkpoint(TRUNCATE)") == 0;
    if (!checkpointed) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  close(pipe_fds[0]);
  EXPECT_TRUE(checkpointed);
}

TEST_F(QuiesceOpsTest, HoldKeepsHostWritersWaitingUntilRelease) {
  Open();
  StartServer({}, kWritable);
  auto client = Connect();
  const Message held = Call(*client, "hold", {{"db", path_}});
  ASSERT_TRUE(held.ok) << held.error_message;
  EXPECT_EQ(held.result["files"]["db"].get<int64_t>(),
            static_cast<int64_t>(std::filesystem::file_size(path_)));
  std::atomic<bool> committed{false};
  std::atomic<int> rc{-1};
  const uint64_t waits = Info(path_).gate.waits;
  std::jthread writer([&] {
    Conn c(path_);
    rc = c.Exec("INSERT INTO t(v) VALUES (1)");
    committed = true;
  });
  // The writer has reached the gate and waits there (the event), and has
  // not committed.
  EXPECT_TRUE(quiesce::testing::Eventually(
      [&] { return Info(path_).gate.waits > waits; }))
      << "the host writer never waited at the gate";
  EXPECT_FALSE(committed.load()) << "a host writer passed a closed gate";
  const Message released = Call(*client, "release", {{"hold", *held.id}});
  ASSERT_TRUE(released.ok) << released.error_message;
  EXPECT_TRUE(released.result["intact"].get<bool>());
  writer.join();
  EXPECT_EQ(rc.load(), SQLITE_OK);
  EXPECT_EQ(Rows(), 2);
  EXPECT_EQ(Call(*client, "release", {{"hold", *held.id}}).error_code,
            "not_found");
}

// locking_mode=EXCLUSIVE, WAL: the hold names the database file and the
// WAL's committed prefix; host commits append past it and go on, and a copy
// of exactly those bytes is the database at the point.
TEST_F(QuiesceOpsTest, AnExclusiveHoldNamesTheCommittedPrefix) {
  path_ = dir_.File("excl.db");
  host_ = std::make_unique<Conn>(path_);
  host_->Must("PRAGMA locking_mode=EXCLUSIVE; PRAGMA journal_mode=WAL");
  host_->Must("CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB)");
  for (int i = 0; i < 10; ++i) {
    host_->Must("INSERT INTO t(v) VALUES (randomblob(5000))");
  }
  StartServer({}, kWritable);
  auto client = Connect();
  const Message held = Call(*client, "hold", {{"db", path_}});
  ASSERT_TRUE(held.ok) << held.error_message;
  EXPECT_EQ(held.result["locking_mode"], "exclusive");
  const auto db_bytes = held.result["files"]["db"].get<int64_t>();
  const auto wal_bytes = held.result["files"]["wal"].get<int64_t>();
  EXPECT_EQ(held.result["files"]["journal"].get<int64_t>(), 0);
  EXPECT_GT(wal_bytes, 0);
  host_->Must("INSERT INTO t(v) VALUES (1)");  // appends past the prefix
  EXPECT_GT(static_cast<int64_t>(std::filesystem::file_size(path_ + "-wal")),
            wal_bytes);
  const std::string copy = dir_.File("copy.db");
  std::filesystem::copy_file(path_, copy);
  std::filesystem::copy_file(path_ + "-wal", copy + "-wal");
  std::filesystem::resize_file(copy, static_cast<uintmax_t>(db_bytes));
  std::filesystem::resize_file(copy + "-wal",
                               static_cast<uintmax_t>(wal_bytes));
  const Message released = Call(*client, "release", {{"hold", *held.id}});
  ASSERT_TRUE(released.ok) << released.error_message;
  EXPECT_TRUE(released.result["intact"].get<bool>());
  Conn check(copy, "unix");
  EXPECT_EQ(check.Text("PRAGMA integrity_check"), "ok");
  EXPECT_EQ(check.Int("SELECT count(*) FROM t"), 10);
  EXPECT_EQ(Rows(), 11);
}

// locking_mode=EXCLUSIVE, rollback journal: a host commit waits for the
// release, then succeeds.
TEST_F(QuiesceOpsTest, AnExclusiveHoldKeepsRollbackCommitsWaiting) {
  path_ = dir_.File("excl.db");
  host_ = std::make_unique<Conn>(path_);
  host_->Must("PRAGMA locking_mode=EXCLUSIVE; PRAGMA journal_mode=DELETE");
  host_->Must("CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB)");
  host_->Must("INSERT INTO t(v) VALUES (1)");
  StartServer({}, kWritable);
  auto client = Connect();
  const Message held = Call(*client, "hold", {{"db", path_}});
  ASSERT_TRUE(held.ok) << held.error_message;
  EXPECT_EQ(held.result["files"]["db"].get<int64_t>(),
            static_cast<int64_t>(std::filesystem::file_size(path_)));
  const uint64_t waits = Info(path_).gate.waits;
  std::atomic<int> rc{-1};
  std::jthread writer([&] { rc = host_->Exec("INSERT INTO t(v) VALUES (2)"); });
  for (auto until = Clock::now() + std::chrono::seconds(10);
       Info(path_).gate.waits == waits && Clock::now() < until;) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  EXPECT_GT(Info(path_).gate.waits, waits) << "the commit did not wait";
  EXPECT_EQ(rc.load(), -1) << "a host commit passed the closed gate";
  const Message released = Call(*client, "release", {{"hold", *held.id}});
  ASSERT_TRUE(released.ok) << released.error_message;
  writer.join();
  EXPECT_EQ(rc.load(), SQLITE_OK);
  EXPECT_EQ(Rows(), 2);
}

TEST_F(QuiesceOpsTest, HoldAndInjectNeedWriteAccess) {
  Open();
  StartServer();  // the default policy: read only
  auto client = Connect();
  EXPECT_EQ(Call(*client, "hold", {{"db", path_}}).error_code, "forbidden");
  EXPECT_EQ(Call(*client, "inject", {{"db", path_}, {"sql", "DELETE FROM t"}})
                .error_code,
            "forbidden");
  EXPECT_EQ(Rows(), 1);
}

TEST_F(QuiesceOpsTest, ADisconnectEndsTheLease) {
  Open();
  StartServer({}, kWritable);
  {
    auto client = Connect();
    ASSERT_TRUE(Call(*client, "hold", {{"db", path_}}).ok);
    EXPECT_TRUE(Info(path_).gate_closed);
  }
  EXPECT_TRUE(GateOpens());
  host_->Must("INSERT INTO t(v) VALUES (1)");
}

TEST_F(QuiesceOpsTest, ALeaseRunsOutWithNotice) {
  Open();
  StartServer({}, kWritable);
  auto client = Connect();
  const Message held =
      Call(*client, "hold", {{"db", path_}, {"lease_ms", 200}});
  ASSERT_TRUE(held.ok) << held.error_message;
  Message event;
  std::string error;
  ASSERT_EQ(client->Read(&event, kTimeoutMs, &error), Client::Status::kOk)
      << error;
  EXPECT_TRUE(event.is_event);
  EXPECT_EQ(event.event, "revoked");
  EXPECT_EQ(event.id, held.id);
  EXPECT_TRUE(GateOpens());
  host_->Must("INSERT INTO t(v) VALUES (1)");
  const Message released = Call(*client, "release", {{"hold", *held.id}});
  ASSERT_TRUE(released.ok);
  EXPECT_FALSE(released.result["intact"].get<bool>());
  EXPECT_EQ(Info(path_).gate.stall_timeouts, 0u);
}

TEST_F(QuiesceOpsTest, InjectWithBlobsFromDescriptors) {
  Open("delete");
  StartServer({}, kWritable);
  auto client = Connect();
  const int blob = memfd_create("blob", MFD_CLOEXEC);
  ASSERT_EQ(write(blob, "\x00\x01payload", 9), 9);
  lseek(blob, 0, SEEK_SET);
  Message reply;
  std::string error;
  ASSERT_EQ(client->Call("inject",
                         {{"db", path_},
                          {"sql", "INSERT INTO t(v) VALUES (:body)"},
                          {"params", {{"body", 0}}}},
                         &reply, kTimeoutMs, &error, {blob}),
            Client::Status::kOk)
      << error;
  close(blob);
  ASSERT_TRUE(reply.ok) << reply.error_message;
  EXPECT_TRUE(reply.result["committed"].get<bool>());
  EXPECT_EQ(reply.result["changes"], 1);
  EXPECT_EQ(reply.result["generation"], Info(path_).generation);
  EXPECT_EQ(host_->Int("SELECT length(v) FROM t WHERE id = 2"), 9);
}

TEST_F(QuiesceOpsTest, InjectErrorsComeBackTyped) {
  Open();
  StartServer({}, kWritable);
  auto client = Connect();
  EXPECT_EQ(Call(*client, "inject", {{"db", path_}, {"sql", "DROP TABLE t"}})
                .error_code,
            "forbidden");
  EXPECT_EQ(Call(*client, "inject",
                 {{"db", path_}, {"sql", "INSERT INTO nowhere VALUES (1)"}})
                .error_code,
            "sql_error");
  EXPECT_EQ(Call(*client, "inject", {{"db", path_}}).error_code,
            "bad_request");
  EXPECT_EQ(Call(*client, "inject",
                 {{"db", path_}, {"sql", "SELECT 1"}, {"sql_fd", 0}})
                .error_code,
            "bad_request");
  EXPECT_EQ(Rows(), 1);
}

}  // namespace
}  // namespace quiesce::control

namespace quiesce::control {
namespace {

TEST_F(QuiesceOpsTest, AClientGoneMidInjectionAppliesNothing) {
  Open();
  StartServer({}, kWritable);
  {
    auto client = Connect();
    int64_t id;
    std::string error;
    ASSERT_EQ(client->Send(
                  "inject",
                  {{"db", path_},
                   {"sql",
                    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 "
                    "FROM c WHERE x < 50000000) INSERT INTO t(v) SELECT 'q' "
                    "FROM c"}},
                  {}, &id, kTimeoutMs, &error),
              Client::Status::kOk);
    // Gone once the injection runs: its gate is closed.
    ASSERT_TRUE(quiesce::testing::Eventually(
        [&] { return Info(path_).gate_closed; }))
        << "the injection never began";
  }
  EXPECT_TRUE(GateOpens());
  host_->Must("INSERT INTO t(v) VALUES (1)");
  EXPECT_EQ(host_->Int("SELECT count(*) FROM t WHERE v = 'q'"), 0);
  EXPECT_EQ(Info(path_).gate.stall_timeouts, 0u);
}

}  // namespace
}  // namespace quiesce::control

namespace quiesce::control {
namespace {

TEST_F(QuiesceOpsTest, InjectPayloadsHaveLimits) {
  Open();
  StartServer({}, kWritable);
  auto client = Connect();
  // More than 1 MiB of inline SQL: pass larger scripts by descriptor.
  // (The line itself exceeds the server's line cap, which answers first.)
  const std::string big(2u << 20, ' ');
  Message reply;
  std::string error;
  client->Call("inject", {{"db", path_}, {"sql", "SELECT 1;" + big}}, &reply,
               kTimeoutMs, &error);
  EXPECT_FALSE(reply.ok);
  // A blob larger than 64 MiB from a descriptor.
  auto again = Connect();
  const int blob = memfd_create("big", MFD_CLOEXEC);
  ASSERT_EQ(ftruncate(blob, (65u << 20)), 0);
  ASSERT_EQ(again->Call("inject",
                        {{"db", path_},
                         {"sql", "INSERT INTO t(v) VALUES (:b)"},
                         {"params", {{"b", 0}}}},
                        &reply, kTimeoutMs, &error, {blob}),
            Client::Status::kOk)
      << error;
  close(blob);
  EXPECT_EQ(reply.error_code, "bad_request") << reply.error_message;
  EXPECT_NE(reply.error_message.find("MiB"), std::string::npos);
  EXPECT_EQ(Rows(), 1);
}

}  // namespace
}  // namespace quiesce::control
