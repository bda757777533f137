// The control server over real sockets: the operations, and everything a
// client can do wrong, without the host ever hanging, crashing or growing.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <thread>
#include <vector>

#include "framing.h"
#include "quiesce/quiesce.h"
#include "server_fixture.h"
#include "socket_path.h"

namespace quiesce::control {
namespace {

using quiesce::testing::Conn;
using quiesce::testing::Info;

TEST_F(ServerTest, HelloNegotiatesTheVersionAndListsOperations) {
  StartServer();
  auto client = Connect();
  Message hello = Call(*client, "hello", {{"version", 7}});
  ASSERT_TRUE(hello.ok) << hello.error_message;
  EXPECT_EQ(hello.result["version"], 1);
  EXPECT_EQ(hello.result["pid"], getpid());
  EXPECT_EQ(hello.result["capabilities"]["read"], true);
  EXPECT_EQ(hello.result["capabilities"]["write"], "none");
  std::vector<std::string> ops;
  for (const auto& op : hello.result["ops"]) ops.push_back(op["op"]);
  EXPECT_EQ(ops, (std::vector<std::string>{"hello", "list", "status", "watch",
                                           "unwatch", "snapshot", "hold",
                                           "release", "inject"}));
  Message old = Call(*client, "hello", {{"version", 0}});
  EXPECT_FALSE(old.ok);
  EXPECT_EQ(old.error_code, "unsupported");
}

TEST_F(ServerTest, ListAndStatusDescribeOpenDatabases) {
  StartServer();
  const std::string path = dir_.File("a.db");
  Conn conn(path);
  conn.Must("PRAGMA journal_mode=wal");
  conn.Must("CREATE TABLE t(x)");
  conn.Must("INSERT INTO t VALUES (1)");
  const DatabaseInfo info = Info(path);
  auto client = Connect();

  Message list = Call(*client, "list");
  ASSERT_TRUE(list.ok);
  const json* row = nullptr;
  for (const auto& r : list.result["databases"]) {
    if (r["path"] == path) row = &r;
  }
  ASSERT_NE(row, nullptr) << list.result.dump();
  EXPECT_EQ((*row)["db"], info.id);
  EXPECT_EQ((*row)["journal_mode"], "wal");
  EXPECT_EQ((*row)["locking_mode"], "normal");
  EXPECT_EQ((*row)["generation"], info.generation);
  EXPECT_EQ((*row)["handles"], 1);
  EXPECT_EQ((*row)["position"]["mx_frame"], info.position.mx_frame);

  Message by_id = Call(*client, "status", {{"db", info.id}});
  ASSERT_TRUE(by_id.ok) << by_id.error_message;
  EXPECT_EQ(by_id.result["path"], path);
  EXPECT_EQ(by_id.result["counters"]["transactions"], info.transactions);
  EXPECT_EQ(by_id.result["handle_locks"].size(), 1u);
  Message by_path = Call(*client, "status", {{"db", path}});
  ASSERT_TRUE(by_path.ok);
  EXPECT_EQ(by_path.result["db"], info.id);

  EXPECT_EQ(Call(*client, "status", {{"db", 999999}}).error_code, "not_found");
  EXPECT_EQ(Call(*client, "status", {{"db", path + "x"}}).error_code,
            "not_found");
  EXPECT_EQ(Call(*client, "status").error_code, "bad_request");
  EXPECT_EQ(Call(*client, "status", {{"db", true}}).error_code, "bad_request");
  EXPECT_EQ(Call(*client, "frobnicate").error_code, "unknown_op");
}

TEST_F(ServerTest, ManyConcurrentClients) {
  StartServer();
  Conn conn(dir_.File("a.db"));
  conn.Must("CREATE TABLE t(x)");
  constexpr int kClients = 24, kCalls = 25;
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int c = 0; c < kClients; ++c) {
    threads.emplace_back([&] {
      std::string error;
      auto client = Client::Connect(server_->socket(), kTimeoutMs, &error);
      if (!client) return;
      for (int i = 0; i < kCalls; ++i) {
        Message reply;
        if (client->Call(i % 2 ? "list" : "hello", json::object(), &reply,
                         kTimeoutMs, &error) == Client::Status::kOk &&
            reply.ok) {
          ++ok;
        }
      }
    });
  }
  for (int i = 0; i < 50; ++i) conn.Must("INSERT INTO t VALUES (1)");
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), kClients * kCalls);
}

TEST_F(ServerTest, MalformedLinesGetTypedErrorsAndTheSessionGoesOn) {
  StartServer();
  auto client = Connect();
  const char* bad[] = {"nonsense", "[1,2]", "{\"id\":1}", "{\"id\":\"x\",\"op\":\"hello\"}",
                       "{\"id\":2,\"op\":\"hello\"", "\xff\xfe"};
  for (const char* line : bad) {
    ASSERT_TRUE(SendAll(client->fd(), std::string(line) + "\n", {}, kTimeoutMs));
    Message reply;
    std::string error;
    ASSERT_EQ(client->Read(&reply, kTimeoutMs, &error), Client::Status::kOk)
        << error;
    EXPECT_FALSE(reply.ok) << line;
    EXPECT_EQ(reply.error_code, "bad_request") << line;
  }
  EXPECT_TRUE(Call(*client, "hello").ok);
}

TEST_F(ServerTest, AnOversizedLineIsRefusedAndTheConnectionClosed) {
  ServerLimits limits;
  limits.max_line = 1024;
  StartServer(limits);
  auto client = Connect();
  ASSERT_TRUE(SendAll(client->fd(), std::string(4096, ' '), {}, kTimeoutMs));
  const auto messages = ReadToEnd(*client);
  ASSERT_EQ(messages.size(), 1u);
  EXPECT_EQ(messages[0].error_code, "bad_request");
  EXPECT_NE(messages[0].error_message.find("1024"), std::string::npos);
  EXPECT_TRUE(Call(*Connect(), "hello").ok) << "others are still served";
}

TEST_F(ServerTest, ATruncatedRequestTimesOut) {
  ServerLimits limits;
  limits.request_timeout = std::chrono::milliseconds(100);
  StartServer(limits);
  auto client = Connect();
  ASSERT_TRUE(SendAll(client->fd(), "{\"id\":1,\"op\":", {}, kTimeoutMs));
  const auto messages = ReadToEnd(*client);
  ASSERT_EQ(messages.size(), 1u);
  EXPECT_EQ(messages[0].error_code, "timeout");
}

TEST_F(ServerTest, AnIdleSessionIsClosed) {
  ServerLimits limits;
  limits.idle_timeout = std::chrono::milliseconds(100);
  StartServer(limits);
  auto client = Connect();
  EXPECT_TRUE(Call(*client, "hello").ok);
  const auto messages = ReadToEnd(*client);
  ASSERT_EQ(messages.size(), 1u);
  EXPECT_EQ(messages[0].error_code, "timeout");
}

TEST_F(ServerTest, DisconnectsMidMessageLeaveTheServerHealthy) {
  StartServer();
  for (int i = 0; i < 20; ++i) {
    auto client = Connect();
    const std::string partial =
        std::string("{\"id\":1,\"op\":\"list\"}").substr(0, i % 19);
    ASSERT_TRUE(SendAll(client->fd(), partial, {}, kTimeoutMs));
  }
  // Also one that goes away with a request still unanswered.
  {
    auto client = Connect();
    ASSERT_TRUE(SendAll(client->fd(), "{\"id\":1,\"op\":\"list\"}\n", {},
                        kTimeoutMs));
  }
  EXPECT_TRUE(Call(*Connect(), "hello").ok);
}

TEST_F(ServerTest, AFloodOfUnreadRepliesDropsTheClientNotTheHost) {
  ServerLimits limits;
  limits.max_output = 64 * 1024;
  StartServer(limits);
  auto client = Connect();
  std::string burst;
  for (int i = 0; i < 2000; ++i) {
    burst += "{\"id\":" + std::to_string(i) + ",\"op\":\"hello\"}\n";
  }
  // Keep sending, never reading, until the host hangs up on us.
  bool dropped = false;
  for (int round = 0; round < 1000 && !dropped; ++round) {
    if (!SendAll(client->fd(), burst, {}, kTimeoutMs)) dropped = true;
  }
  EXPECT_TRUE(dropped);
  EXPECT_TRUE(Call(*Connect(), "hello").ok);
}

TEST_F(ServerTest, DescriptorsMustBeDeclaredAndWanted) {
  StartServer();
  auto client = Connect();
  // hello takes none: refused, the descriptor is closed, the session goes on.
  Message reply;
  std::string error;
  ASSERT_EQ(client->Call("hello", json::object(), &reply, kTimeoutMs, &error,
                         {STDERR_FILENO}),
            Client::Status::kOk)
      << error;
  EXPECT_EQ(reply.error_code, "bad_request");
  EXPECT_TRUE(Call(*client, "hello").ok);
  // Declared but missing: the stream is out of step, the session ends.
  ASSERT_TRUE(SendAll(client->fd(), "{\"id\":9,\"op\":\"hello\",\"fds\":1}\n",
                      {}, kTimeoutMs));
  const auto messages = ReadToEnd(*client);
  ASSERT_EQ(messages.size(), 1u);
  EXPECT_EQ(messages[0].error_code, "bad_request");
}

TEST_F(ServerTest, ConnectionCapsPerUidAndInTotal) {
  ServerLimits limits;
  limits.max_per_uid = 2;
  StartServer(limits);
  auto a = Connect();
  auto b = Connect();
  ASSERT_TRUE(Call(*a, "hello").ok);
  ASSERT_TRUE(Call(*b, "hello").ok);
  auto c = Connect();
  Message refused = Call(*c, "hello");
  EXPECT_FALSE(refused.ok);
  EXPECT_EQ(refused.error_code, "busy");
  b.reset();  // a slot frees when a session ends
  Message later;
  for (int i = 0; i < 100; ++i) {
    later = Call(*Connect(), "hello");
    if (later.ok) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_TRUE(later.ok);

  server_.reset();
  limits.max_per_uid = 10;
  limits.max_connections = 1;
  StartServer(limits);
  auto only = Connect();
  ASSERT_TRUE(Call(*only, "hello").ok);
  EXPECT_EQ(Call(*Connect(), "hello").error_code, "busy");
}

// Runs `probe` in a child process that is uid/gid 65534 (nobody); returns
// its exit status.
int AsNobody(const std::function<int()>& probe) {
  const pid_t pid = fork();
  if (pid == 0) {
    if (setgid(65534) != 0 || setuid(65534) != 0) _exit(100);
    _exit(probe());
  }
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 101;
}

TEST_F(ServerTest, APeerWithAnotherUidIsRefused) {
  if (geteuid() != 0) {
    GTEST_SKIP() << "needs root to run a client as another uid (nobody)";
  }
  // A path socket: its 0700 directory keeps nobody out before any check.
  StartServer();
  const std::string path = server_->socket();
  EXPECT_EQ(AsNobody([&] {
              std::string error;
              return Client::Connect(path, 1000, &error) ? 0 : 2;
            }),
            2);
  server_.reset();

  // An abstract socket has no permissions: SO_PEERCRED is the guard. The
  // client also checks the server's uid, so it expects root.
  const std::string name = "@quiesce-test-" + std::to_string(getpid());
  auto probe = [&] {
    std::string error;
    auto client = Client::Connect(name, 1000, &error, uid_t{0});
    if (!client) return 2;
    Message reply;
    if (client->Call("hello", json::object(), &reply, 5000, &error) !=
        Client::Status::kOk) {
      return 3;
    }
    if (reply.ok) return 0;
    return reply.error_code == "forbidden" ? 4 : 5;
  };
  StartServer({}, {0, {}, ""}, name);
  EXPECT_EQ(AsNobody(probe), 4) << "refused with a forbidden error";
  server_.reset();
  StartServer({}, {0, {65534}, ""}, name);
  EXPECT_EQ(AsNobody(probe), 0) << "allowed once on the allowlist";
}

TEST_F(ServerTest, AClientRefusesAnAbstractSocketOfAnotherUid) {
  const std::string name = "@quiesce-test-uid-" + std::to_string(getpid());
  StartServer({}, {geteuid(), {}, ""}, name);
  std::string error;
  EXPECT_EQ(Client::Connect(name, 1000, &error, geteuid() + 1), nullptr);
  EXPECT_NE(error.find("expected uid"), std::string::npos) << error;
  EXPECT_NE(Client::Connect(name, 1000, &error), nullptr) << error;
}

TEST_F(ServerTest, ASecondServerOnALiveSocketFailsCleanly) {
  StartServer();
  auto client = Connect();
  ServerOptions options;
  options.socket = server_->socket();
  options.policy = {geteuid(), {}, ""};
  const Result<std::unique_ptr<Server>> second =
      Server::Start(Context::Get(), options);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.error().code, ErrorCode::kBusy);
  EXPECT_NE(second.error().message.find("live"), std::string::npos)
      << second.error().message;
  EXPECT_TRUE(Call(*client, "hello").ok) << "the first keeps serving";
  EXPECT_TRUE(Call(*Connect(), "hello").ok);
}

TEST_F(ServerTest, AClientWithNoServerToReachSaysWhatToCheck) {
  std::string error;
  const std::string path = dir_.File("nobody.sock");
  EXPECT_EQ(Client::Connect(path, 1000, &error), nullptr);
  EXPECT_NE(error.find("is the host running"), std::string::npos) << error;
  EXPECT_NE(error.find("0700"), std::string::npos) << error;

  // A socket left behind by a host that exited.
  StartServer({}, {geteuid(), {}, ""}, path);
  const std::string copy = dir_.File("stale.sock");
  ASSERT_EQ(link(path.c_str(), copy.c_str()), 0);
  server_->Stop();
  EXPECT_EQ(Client::Connect(copy, 1000, &error), nullptr);
  EXPECT_NE(error.find("has exited"), std::string::npos) << error;
}

TEST_F(ServerTest, StopClosesSessionsAndUnlinksTheSocket) {
  StartServer();
  const std::string path = server_->socket();
  auto client = Connect();
  ASSERT_TRUE(Call(*client, "hello").ok);
  server_.reset();
  struct stat st;
  EXPECT_NE(lstat(path.c_str(), &st), 0);
  EXPECT_TRUE(ReadToEnd(*client).empty());
}

TEST_F(ServerTest, RegisterStartsTheServerAndShutdownStopsIt) {
  const std::string path = dir_.File("host.sock");
  quiesce_config config{};
  config.size = sizeof(config);
  config.base_vfs = "unix";
  config.vfs_name = "quiesce";  // registered already: only the server starts
  config.socket_path = path.c_str();
  ASSERT_EQ(quiesce_register(&config), 0);
  std::string error;
  auto client = Client::Connect(path, kTimeoutMs, &error);
  ASSERT_NE(client, nullptr) << error;
  EXPECT_TRUE(Call(*client, "hello").ok);
  quiesce_shutdown();
  struct stat st;
  EXPECT_NE(lstat(path.c_str(), &st), 0);
  EXPECT_TRUE(ReadToEnd(*client).empty());
}

// A host that forks without exec: the child has the server's pointer but
// not its thread. Shutting down there must neither hang nor unlink the
// parent's socket, whose server keeps answering.
TEST_F(ServerTest, AForkedChildLeavesTheParentsServerAlone) {
  const std::string path = dir_.File("forked.sock");
  quiesce_config config{};
  config.size = sizeof(config);
  config.base_vfs = "unix";
  config.vfs_name = "quiesce";
  config.socket_path = path.c_str();
  ASSERT_EQ(quiesce_register(&config), 0);
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    alarm(10);  // a hang fails the test instead of stalling it
    quiesce_shutdown();
    _exit(0);
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  struct stat st;
  EXPECT_EQ(lstat(path.c_str(), &st), 0) << "the child unlinked the socket";
  std::string error;
  auto client = Client::Connect(path, kTimeoutMs, &error);
  ASSERT_NE(client, nullptr) << error;
  EXPECT_TRUE(Call(*client, "hello").ok);
  quiesce_shutdown();
}

}  // namespace
}  // namespace quiesce::control
