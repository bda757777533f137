// Where sockets go, and the rules for listening: a safe directory, a stale
// socket replaced, a live one kept, abstract names.
#include "socket_path.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include "support.h"

namespace quiesce::control {
namespace {

using quiesce::testing::TempDir;

TEST(DefaultSocketPath, PrefersXdgRuntimeDir) {
  EXPECT_EQ(DefaultSocketPath("/run/user/1000", 42, 1000),
            "/run/user/1000/quiesce/42.sock");
  EXPECT_EQ(DefaultSocketPath(nullptr, 42, 1000), "/tmp/quiesce-1000/42.sock");
  EXPECT_EQ(DefaultSocketPath("", 42, 1000), "/tmp/quiesce-1000/42.sock");
  EXPECT_EQ(DefaultSocketDirs("/x", 7).size(), 2u);
}

TEST(MakeAddress, AbstractNamesAndLengthLimits) {
  sockaddr_un addr;
  socklen_t len;
  std::string error;
  ASSERT_TRUE(MakeAddress("@quiesce-test", &addr, &len, &error));
  EXPECT_EQ(addr.sun_path[0], '\0');
  EXPECT_EQ(std::string(addr.sun_path + 1, 12), "quiesce-test");
  EXPECT_FALSE(MakeAddress("@", &addr, &len, &error));
  EXPECT_FALSE(MakeAddress("", &addr, &len, &error));
  EXPECT_FALSE(MakeAddress("/" + std::string(200, 'a'), &addr, &len, &error));
}

TEST(Listen, MakesA0600SocketAndUnlinksItAgain) {
  TempDir dir;
  const std::string path = dir.File("s.sock");
  Listener listener;
  std::string error;
  ASSERT_TRUE(Listen(path, false, &listener, &error)) << error;
  struct stat st;
  ASSERT_EQ(lstat(path.c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  Unlisten(&listener);
  EXPECT_NE(lstat(path.c_str(), &st), 0);
}

TEST(Listen, CreatesTheDefaultDirectoryPrivate) {
  TempDir dir;
  const std::string sub = dir.File("quiesce");
  Listener listener;
  std::string error;
  ASSERT_TRUE(Listen(sub + "/1.sock", true, &listener, &error)) << error;
  struct stat st;
  ASSERT_EQ(stat(sub.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  Unlisten(&listener);
}

TEST(Listen, RefusesADirectoryOthersCanEnter) {
  TempDir dir;
  ASSERT_EQ(chmod(dir.path().c_str(), 0755), 0);
  Listener listener;
  std::string error;
  EXPECT_FALSE(Listen(dir.File("s.sock"), false, &listener, &error));
  EXPECT_NE(error.find("mode 755"), std::string::npos) << error;
}

TEST(Listen, RefusesADirectoryOwnedBySomeoneElse) {
  if (geteuid() != 0) {
    GTEST_SKIP() << "needs root to give a directory to another uid";
  }
  TempDir dir;
  ASSERT_EQ(chown(dir.path().c_str(), 65534, 65534), 0);
  Listener listener;
  std::string error;
  EXPECT_FALSE(Listen(dir.File("s.sock"), false, &listener, &error));
  EXPECT_NE(error.find("owned by uid 65534"), std::string::npos) << error;
}

TEST(Listen, ReplacesAStaleSocket) {
  TempDir dir;
  const std::string path = dir.File("s.sock");
  {
    // A host that died without unlinking: the file stays, nobody listens.
    Listener dead;
    std::string error;
    ASSERT_TRUE(Listen(path, false, &dead, &error)) << error;
    dead.fd.reset();
  }
  Listener listener;
  std::string error;
  ASSERT_TRUE(Listen(path, false, &listener, &error)) << error;
  UniqueFd client = ConnectUnix(path, 1000);
  EXPECT_TRUE(client) << "the new socket accepts connections";
  Unlisten(&listener);
}

TEST(Listen, KeepsALiveSocket) {
  TempDir dir;
  const std::string path = dir.File("s.sock");
  Listener live;
  std::string error;
  ASSERT_TRUE(Listen(path, false, &live, &error)) << error;
  Listener second;
  EXPECT_FALSE(Listen(path, false, &second, &error));
  EXPECT_NE(error.find("live"), std::string::npos) << error;
  EXPECT_TRUE(ConnectUnix(path, 1000)) << "the first socket still serves";
  Unlisten(&live);
}

TEST(Listen, NeverReplacesAFileThatIsNotASocket) {
  TempDir dir;
  const std::string path = dir.File("s.sock");
  FILE* f = fopen(path.c_str(), "w");
  ASSERT_NE(f, nullptr);
  fclose(f);
  Listener listener;
  std::string error;
  EXPECT_FALSE(Listen(path, false, &listener, &error));
  struct stat st;
  EXPECT_EQ(lstat(path.c_str(), &st), 0);
  EXPECT_TRUE(S_ISREG(st.st_mode));
}

TEST(Listen, AbstractNamesNeedNoDirectory) {
  const std::string name = "@quiesce-test-" + std::to_string(getpid());
  Listener listener;
  std::string error;
  ASSERT_TRUE(Listen(name, false, &listener, &error)) << error;
  Listener second;
  EXPECT_FALSE(Listen(name, false, &second, &error)) << "names are unique";
  UniqueFd client = ConnectUnix(name, 1000);
  ASSERT_TRUE(client);
  PeerCreds server;
  ASSERT_TRUE(ReadPeerCreds(client.get(), &server));
  EXPECT_EQ(server.uid, geteuid());
  EXPECT_EQ(server.pid, getpid());
  Unlisten(&listener);
}

}  // namespace
}  // namespace quiesce::control
