// The watch stream: every commit made through the shim exactly once and in
// order, other processes' commits as foreign events, and a reader that
// falls behind dropped without ever slowing the host.
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <sys/socket.h>

#include <atomic>
#include <cstdlib>
#include <thread>
#include <vector>

#include "framing.h"
#include "server_fixture.h"

namespace quiesce::control {
namespace {

using quiesce::testing::Conn;
using quiesce::testing::Info;

// Reads events until `want` commit events of `db` arrived, or anything
// else ends the stream.
std::vector<json> ReadCommits(Client& client, uint64_t db, size_t want) {
  std::vector<json> commits;
  while (commits.size() < want) {
    Message m;
    std::string error;
    if (client.Read(&m, kTimeoutMs, &error) != Client::Status::kOk) {
      ADD_FAILURE() << "stream ended after " << commits.size() << ": " << error;
      break;
    }
    if (!m.is_event) continue;
    if (m.event != "commit") {
      ADD_FAILURE() << "unexpected event " << m.body.dump();
      break;
    }
    if (m.body["db"] == db) commits.push_back(m.body);
  }
  return commits;
}

TEST_F(ServerTest, WatchSeesEveryCommitOfAMultiThreadedWriterOnceInOrder) {
  StartServer();
  const std::string path = dir_.File("w.db");
  Conn setup(path);
  setup.Must("PRAGMA journal_mode=wal");
  setup.Must("PRAGMA synchronous=off");
  setup.Must("CREATE TABLE t(x)");
  const DatabaseInfo before = Info(path);

  auto client = Connect();
  Message watch = Call(*client, "watch");  // all databases
  ASSERT_TRUE(watch.ok) << watch.error_message;
  EXPECT_EQ(watch.result["all"], true);

  constexpr int kThreads = 4, kCommits = 250;
  std::atomic<int> failures{0};
  std::vector<std::thread> writers;
  for (int t = 0; t < kThreads; ++t) {
    writers.emplace_back([&] {
      Conn conn(path);
      sqlite3_busy_timeout(conn.get(), 10000);
      conn.Must("PRAGMA synchronous=off");
      for (int i = 0; i < kCommits; ++i) {
        if (conn.Exec("INSERT INTO t VALUES (randomblob(64))") != SQLITE_OK) {
          ++failures;
        }
      }
    });
  }
  const auto commits = ReadCommits(*client, before.id, kThreads * kCommits);
  for (auto& w : writers) w.join();
  EXPECT_EQ(failures.load(), 0);
  ASSERT_EQ(commits.size(), size_t{kThreads * kCommits});
  EXPECT_EQ(Info(path).generation, before.generation + kThreads * kCommits);
  for (size_t i = 0; i < commits.size(); ++i) {
    EXPECT_EQ(commits[i]["generation"], before.generation + i + 1);
    EXPECT_EQ(commits[i]["foreign"], false);
    EXPECT_GT(commits[i]["frames"], 0);
    if (i > 0) {
      EXPECT_EQ(commits[i]["seq"], commits[i - 1]["seq"].get<uint64_t>() + 1);
    }
  }
  // Nothing more: each commit was reported once.
  Message hello = Call(*client, "hello");
  EXPECT_TRUE(hello.ok);
  Message extra;
  std::string error;
  EXPECT_EQ(client->Read(&extra, 0, &error), Client::Status::kTimeout)
      << extra.body.dump();
}

TEST_F(ServerTest, AnotherProcessesCommitsArriveAsForeignEvents) {
  if (std::system("sqlite3 -version >/dev/null 2>&1") != 0) {
    GTEST_SKIP() << "the sqlite3 command-line shell is not installed";
  }
  StartServer();
  const std::string path = dir_.File("f.db");
  Conn host(path);
  host.Must("PRAGMA journal_mode=wal");
  host.Must("CREATE TABLE t(x)");
  const DatabaseInfo before = Info(path);
  auto client = Connect();
  ASSERT_TRUE(Call(*client, "watch", {{"db", path}}).ok);

  const std::string cmd = "sqlite3 '" + path +
                          "' 'INSERT INTO t VALUES (1); INSERT INTO t VALUES "
                          "(2); INSERT INTO t VALUES (3);'";
  ASSERT_EQ(std::system(cmd.c_str()), 0);
  // The host notices when it next reads; then commits one of its own.
  EXPECT_EQ(host.Int("SELECT count(*) FROM t"), 3);
  host.Must("INSERT INTO t VALUES (4)");

  Message first, second;
  std::string error;
  ASSERT_EQ(client->Read(&first, kTimeoutMs, &error), Client::Status::kOk);
  ASSERT_EQ(client->Read(&second, kTimeoutMs, &error), Client::Status::kOk);
  // Three foreign commits, coalesced into one event at the host's read.
  EXPECT_EQ(first.body["foreign"], true) << first.body.dump();
  EXPECT_EQ(first.body["generation"], before.generation);
  EXPECT_EQ(second.body["foreign"], false) << second.body.dump();
  EXPECT_EQ(second.body["generation"], before.generation + 1);
  EXPECT_GT(second.body["position"]["mx_frame"],
            first.body["position"]["mx_frame"]);
}

TEST_F(ServerTest, AWatcherThatNeverReadsIsDroppedAndTheHostKeepsCommitting) {
  ServerLimits limits;
  limits.watch_low_water = 4096;
  // The reason waits for the client's next read (it reads only after the
  // commits below).
  limits.close_linger = std::chrono::seconds(60);
  StartServer(limits);
  const std::string path = dir_.File("s.db");
  Conn host(path);
  host.Must("PRAGMA journal_mode=wal");
  host.Must("PRAGMA synchronous=off");
  host.Must("CREATE TABLE t(x)");
  const uint64_t start = Info(path).generation;
  auto client = Connect();
  ASSERT_TRUE(Call(*client, "watch", {{"db", path}}).ok);

  // Far more events than the ring, the server's buffer and the socket hold
  // together; the client reads nothing meanwhile.
  constexpr int kCommits = 3 * Database::kEventCapacity;
  for (int i = 0; i < kCommits; ++i) {
    ASSERT_EQ(host.Exec("INSERT INTO t VALUES (1)"), SQLITE_OK);
  }
  EXPECT_EQ(Info(path).generation, start + kCommits);

  const auto messages = ReadToEnd(*client);
  ASSERT_FALSE(messages.empty());
  const Message& last = messages.back();
  ASSERT_EQ(last.event, "dropped") << last.body.dump();
  EXPECT_NE(last.body.value("reason", "").find("fell behind"),
            std::string::npos);
  // What did arrive came in order, without gaps.
  for (size_t i = 1; i + 1 < messages.size(); ++i) {
    EXPECT_EQ(messages[i].body.value("seq", uint64_t{0}),
              messages[i - 1].body.value("seq", uint64_t{0}) + 1);
  }
  EXPECT_LT(messages.size(), size_t{kCommits});
}

TEST_F(ServerTest, AOneDatabaseWatchEndsWhenTheHostClosesIt) {
  StartServer();
  const std::string path = dir_.File("c.db");
  auto host = std::make_unique<Conn>(path);
  host->Must("CREATE TABLE t(x)");
  const uint64_t id = Info(path).id;
  auto client = Connect();
  ASSERT_TRUE(Call(*client, "watch", {{"db", id}}).ok);
  host->Must("INSERT INTO t VALUES (1)");
  host.reset();
  const auto commits = ReadCommits(*client, id, 1);
  ASSERT_EQ(commits.size(), 1u) << "the last commit still arrives";
  Message closed;
  std::string error;
  ASSERT_EQ(client->Read(&closed, kTimeoutMs, &error), Client::Status::kOk);
  EXPECT_EQ(closed.event, "closed");
  EXPECT_EQ(closed.body["db"], id);
}

TEST_F(ServerTest, UnwatchStopsOnlyThatStream) {
  StartServer();
  const std::string path = dir_.File("u.db");
  Conn host(path);
  host.Must("CREATE TABLE t(x)");
  auto client = Connect();
  Message first = Call(*client, "watch", {{"db", path}});
  ASSERT_TRUE(first.ok);
  const int64_t first_id = *first.id;
  Message stop = Call(*client, "unwatch", {{"watch", first_id}});
  ASSERT_TRUE(stop.ok);
  EXPECT_EQ(Call(*client, "unwatch", {{"watch", first_id}}).error_code,
            "not_found");
  host.Must("INSERT INTO t VALUES (1)");
  Message second = Call(*client, "watch", {{"db", path}});
  ASSERT_TRUE(second.ok);
  host.Must("INSERT INTO t VALUES (2)");
  Message event;
  std::string error;
  ASSERT_EQ(client->Read(&event, kTimeoutMs, &error), Client::Status::kOk);
  EXPECT_EQ(event.id, second.id) << "no event of the stopped watch";
  EXPECT_EQ(event.event, "commit");
}

TEST_F(ServerTest, AWatchKeepsStreamingAfterTheClientStopsSending) {
  StartServer();
  const std::string path = dir_.File("h.db");
  Conn host(path);
  host.Must("CREATE TABLE t(x)");
  auto client = Connect();
  // What `echo '{"op":"watch",...}' | socat ...` does: send, then shut down
  // the sending side and keep reading.
  ASSERT_TRUE(SendAll(client->fd(), "{\"id\":1,\"op\":\"watch\"}\n", {},
                      kTimeoutMs));
  ASSERT_EQ(shutdown(client->fd(), SHUT_WR), 0);
  Message reply;
  std::string error;
  ASSERT_EQ(client->Read(&reply, kTimeoutMs, &error), Client::Status::kOk);
  ASSERT_TRUE(reply.ok);
  host.Must("INSERT INTO t VALUES (1)");
  EXPECT_EQ(ReadCommits(*client, Info(path).id, 1).size(), 1u);
}

TEST_F(ServerTest, AWatchOfAllPicksUpDatabasesOpenedLater) {
  StartServer();
  auto client = Connect();
  ASSERT_TRUE(Call(*client, "watch").ok);
  const std::string path = dir_.File("late.db");
  Conn host(path);
  host.Must("CREATE TABLE t(x)");
  host.Must("INSERT INTO t VALUES (1)");
  const DatabaseInfo info = Info(path);
  const auto commits = ReadCommits(*client, info.id, info.generation);
  ASSERT_EQ(commits.size(), info.generation);
  EXPECT_EQ(commits.front()["generation"], 1);
}

}  // namespace
}  // namespace quiesce::control
