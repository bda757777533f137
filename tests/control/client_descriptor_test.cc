// Descriptors a client passes: the host leaves their flags as it found
// them, and refuses those whose I/O could block it.
#include "client_descriptor.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>

#include "control/server_fixture.h"
#include "support.h"

namespace quiesce::control {
namespace {

using quiesce::testing::Conn;

class Pipe {
 public:
  Pipe() { EXPECT_EQ(pipe2(fds_, O_CLOEXEC), 0); }
  ~Pipe() {
    for (int fd : fds_) {
      if (fd >= 0) close(fd);
    }
  }
  Pipe(const Pipe&) = delete;
  Pipe& operator=(const Pipe&) = delete;
  int read_end() const { return fds_[0]; }
  int write_end() const { return fds_[1]; }
  void CloseWriteEnd() {
    close(fds_[1]);
    fds_[1] = -1;
  }

 private:
  int fds_[2] = {-1, -1};
};

bool Blocking(int fd) { return (fcntl(fd, F_GETFL) & O_NONBLOCK) == 0; }

TEST(NonBlocking, GivesTheClientItsFlagsBack) {
  Pipe p;
  {
    NonBlocking nb(p.read_end());
    EXPECT_FALSE(Blocking(p.read_end()));
  }
  EXPECT_TRUE(Blocking(p.read_end()));
}

TEST(CheckCannotBlock, AcceptsPipesSocketsAndLocalFiles) {
  Pipe p;
  EXPECT_TRUE(CheckCannotBlock(p.read_end(), "pipe").ok());
  int pair[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair), 0);
  EXPECT_TRUE(CheckCannotBlock(pair[0], "socket").ok());
  close(pair[0]);
  close(pair[1]);
  quiesce::testing::TempDir dir;
  const int file = open(dir.File("f").c_str(), O_RDWR | O_CREAT, 0600);
  ASSERT_GE(file, 0);
  EXPECT_TRUE(CheckCannotBlock(file, "file").ok());
  close(file);
  EXPECT_FALSE(CheckCannotBlock(-1, "nothing").ok());
}

// The open file description is shared with the client: O_NONBLOCK set by
// the host and left behind would change the client's own reads.
TEST_F(ServerTest, AnInjectionLeavesTheClientsPipeAsItWas) {
  const std::string path = dir_.File("live.db");
  Conn host(path);
  host.Must("PRAGMA journal_mode=WAL; CREATE TABLE t(x)");
  StartServer({}, {geteuid(), {}, "1"});
  auto client = Connect();
  Pipe script;
  const std::string sql = "INSERT INTO t VALUES (1)";
  ASSERT_EQ(write(script.write_end(), sql.data(), sql.size()),
            static_cast<ssize_t>(sql.size()));
  script.CloseWriteEnd();
  Message reply;
  std::string error;
  ASSERT_EQ(client->Call("inject", {{"db", path}, {"sql_fd", 0}}, &reply,
                         kTimeoutMs, &error, {script.read_end()}),
            Client::Status::kOk)
      << error;
  ASSERT_TRUE(reply.ok) << reply.error_message;
  EXPECT_TRUE(Blocking(script.read_end()));
  EXPECT_EQ(host.Int("SELECT count(*) FROM t"), 1);
}

}  // namespace
}  // namespace quiesce::control
