// The protocol as docs/protocol.md states it, one rule per test, over a
// real socket: descriptors exactly as declared (undeclared or extra ones
// refused and closed, on every operation), duplicate keys refused, every
// request line answered, and the inline-SQL cap reachable under the line
// cap.
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "framing.h"
#include "server_fixture.h"

namespace quiesce::control {
namespace {

using quiesce::testing::Conn;

const AccessPolicy kWritable{geteuid(), {}, "1"};

// A pipe whose write end is sent to the host: once the host closed its
// copy (and ours is closed), the read end sees end-of-file.
struct Probe {
  Probe() {
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) == 0) {
      read_end.reset(fds[0]);
      write_end.reset(fds[1]);
    }
  }
  // True when every copy of the write end is closed (bounded wait).
  bool ClosedByHost() {
    write_end.reset();
    pollfd p{read_end.get(), POLLIN, 0};
    if (poll(&p, 1, kTimeoutMs) != 1) return false;
    char c;
    return read(read_end.get(), &c, 1) == 0;
  }
  UniqueFd read_end, write_end;
};

Message ReadOne(Client& client) {
  Message m;
  std::string error;
  EXPECT_EQ(client.Read(&m, kTimeoutMs, &error), Client::Status::kOk) << error;
  return m;
}

bool Closed(Client& client) {
  Message m;
  std::string error;
  return client.Read(&m, kTimeoutMs, &error) == Client::Status::kClosed;
}

class ProtocolTest : public ServerTest {};

// docs: "descriptors sent to an operation that takes none are closed and
// the request is refused" -- hello included, declared or not.
TEST_F(ProtocolTest, UndeclaredDescriptorsAreRefusedAndClosedOnEveryOp) {
  StartServer();
  auto client = Connect();
  for (const char* op : {"hello", "list", "watch", "unwatch", "snapshot"}) {
    Probe probe;
    const std::string line =
        std::string("{\"id\":7,\"op\":\"") + op + "\"}\n";
    ASSERT_TRUE(SendAll(client->fd(), line, {probe.write_end.get()},
                        kTimeoutMs));
    const Message reply = ReadOne(*client);
    EXPECT_FALSE(reply.ok) << op;
    EXPECT_EQ(reply.error_code, "bad_request") << op;
    EXPECT_EQ(reply.id, 7) << op;
    EXPECT_NE(reply.error_message.find("declares 0"), std::string::npos)
        << reply.error_message;
    EXPECT_TRUE(probe.ClosedByHost()) << op << ": the host kept the fd";
  }
  EXPECT_TRUE(Call(*client, "hello").ok) << "the session goes on";
}

TEST_F(ProtocolTest, MoreDescriptorsThanDeclaredAreRefusedAndAllClosed) {
  StartServer();
  auto client = Connect();
  Probe a, b;
  ASSERT_TRUE(SendAll(
      client->fd(), "{\"id\":3,\"op\":\"snapshot\",\"db\":1,\"fds\":1}\n",
      {a.write_end.get(), b.write_end.get()}, kTimeoutMs));
  const Message reply = ReadOne(*client);
  EXPECT_EQ(reply.error_code, "bad_request");
  EXPECT_NE(reply.error_message.find("declares 1"), std::string::npos)
      << reply.error_message;
  EXPECT_TRUE(a.ClosedByHost());
  EXPECT_TRUE(b.ClosedByHost());
  EXPECT_TRUE(Call(*client, "hello").ok) << "the session goes on";
}

TEST_F(ProtocolTest, FewerDescriptorsThanDeclaredCloseTheConnection) {
  StartServer();
  auto client = Connect();
  Probe a;
  ASSERT_TRUE(SendAll(
      client->fd(), "{\"id\":4,\"op\":\"snapshot\",\"db\":1,\"fds\":2}\n",
      {a.write_end.get()}, kTimeoutMs));
  const Message reply = ReadOne(*client);
  EXPECT_EQ(reply.error_code, "bad_request");
  EXPECT_TRUE(a.ClosedByHost());
  EXPECT_TRUE(Closed(*client)) << "the stream is out of step: closed";
}

// JSON leaves duplicate keys undefined; the host refuses them rather than
// let the last one win ("dry_run":true,"dry_run":false committed).
TEST_F(ProtocolTest, DuplicateKeysAreRefusedNamingTheKey) {
  const std::string path = dir_.File("dup.db");
  Conn host(path);
  host.Must("CREATE TABLE t(x)");
  StartServer({}, kWritable);
  auto client = Connect();
  const std::string line =
      "{\"id\":5,\"op\":\"inject\",\"db\":\"" + path +
      "\",\"sql\":\"INSERT INTO t VALUES (1)\",\"dry_run\":true,"
      "\"dry_run\":false}\n";
  ASSERT_TRUE(SendAll(client->fd(), line, {}, kTimeoutMs));
  const Message reply = ReadOne(*client);
  EXPECT_EQ(reply.error_code, "bad_request");
  EXPECT_EQ(reply.id, 5);
  EXPECT_NE(reply.error_message.find("\"dry_run\""), std::string::npos)
      << reply.error_message;
  EXPECT_EQ(host.Int("SELECT count(*) FROM t"), 0) << "it ran";
  // In a nested object too.
  ASSERT_TRUE(SendAll(client->fd(),
                      "{\"id\":6,\"op\":\"hello\",\"x\":{\"a\":1,\"a\":2}}\n",
                      {}, kTimeoutMs));
  const Message nested = ReadOne(*client);
  EXPECT_EQ(nested.error_code, "bad_request");
  EXPECT_NE(nested.error_message.find("\"a\""), std::string::npos);
}

// "Every request line is answered": the last one too when the client sends
// it without a newline and then shuts its sending side.
TEST_F(ProtocolTest, AFinalLineWithoutNewlineIsAnswered) {
  StartServer();
  auto client = Connect();
  ASSERT_TRUE(SendAll(client->fd(),
                      "{\"id\":1,\"op\":\"list\"}\n{\"id\":2,\"op\":\"hello\"}",
                      {}, kTimeoutMs));
  ASSERT_EQ(shutdown(client->fd(), SHUT_WR), 0);
  const auto messages = ReadToEnd(*client);
  ASSERT_EQ(messages.size(), 2u);
  EXPECT_EQ(messages[0].id, 1);
  EXPECT_EQ(messages[1].id, 2);
  EXPECT_TRUE(messages[1].ok) << messages[1].error_message;
}

// A deferred operation's reply still comes after the client's shutdown.
TEST_F(ProtocolTest, AJobsReplyComesAfterTheClientsShutdown) {
  const std::string path = dir_.File("job.db");
  Conn host(path);
  host.Must("CREATE TABLE t(x)");
  StartServer({}, kWritable);
  auto client = Connect();
  const std::string line = "{\"id\":9,\"op\":\"inject\",\"db\":\"" + path +
                           "\",\"sql\":\"INSERT INTO t VALUES (1)\"}";
  ASSERT_TRUE(SendAll(client->fd(), line, {}, kTimeoutMs));
  ASSERT_EQ(shutdown(client->fd(), SHUT_WR), 0);
  const auto messages = ReadToEnd(*client);
  ASSERT_EQ(messages.size(), 1u);
  EXPECT_TRUE(messages[0].ok) << messages[0].error_message;
  EXPECT_EQ(host.Int("SELECT count(*) FROM t"), 1);
}

// The inline-SQL cap is below the line cap, so a client can meet it and
// get its own error (not the line's).
TEST_F(ProtocolTest, TheInlineSqlCapIsReachable) {
  const std::string path = dir_.File("cap.db");
  Conn host(path);
  host.Must("CREATE TABLE t(x)");
  StartServer({}, kWritable);
  auto client = Connect();
  Message hello = Call(*client, "hello");
  ASSERT_TRUE(hello.ok);
  const size_t cap = hello.result["limits"]["max_inline_sql"].get<size_t>();
  const size_t line_cap = hello.result["limits"]["max_line"].get<size_t>();
  ASSERT_LT(cap + 512, line_cap);
  auto sql_of = [](size_t n) {
    std::string sql = "INSERT INTO t VALUES (1);";
    sql.resize(n, ' ');
    return sql;
  };
  const Message at_cap = Call(*client, "inject",
                              {{"db", path}, {"sql", sql_of(cap)}});
  EXPECT_TRUE(at_cap.ok) << at_cap.error_message;
  const Message over = Call(*client, "inject",
                            {{"db", path}, {"sql", sql_of(cap + 1)}});
  EXPECT_EQ(over.error_code, "bad_request");
  EXPECT_NE(over.error_message.find("\"sql\""), std::string::npos)
      << over.error_message;
  EXPECT_EQ(host.Int("SELECT count(*) FROM t"), 1);
  EXPECT_TRUE(Call(*client, "hello").ok) << "the session goes on";
}

}  // namespace
}  // namespace quiesce::control
