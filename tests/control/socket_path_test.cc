// Where sockets go, and the rules for listening: a safe directory, a stale
// socket replaced, a live one kept, abstract names.
#include "socket_path.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include "result_matchers.h"
#include "support.h"

namespace quiesce::control {
namespace {

using quiesce::testing::IsError;
using quiesce::testing::TempDir;
using ::testing::_;
using ::testing::HasSubstr;

TEST(DefaultSocketPath, PrefersXdgRuntimeDir) {
  EXPECT_EQ(DefaultSocketPath("/run/user/1000", 42, 1000),
            "/run/user/1000/quiesce/42.sock");
  EXPECT_EQ(DefaultSocketPath(nullptr, 42, 1000), "/tmp/quiesce-1000/42.sock");
  EXPECT_EQ(DefaultSocketPath("", 42, 1000), "/tmp/quiesce-1000/42.sock");
  EXPECT_EQ(DefaultSocketDirs("/x", 7).size(), 2u);
}

TEST(MakeAddress, AbstractNamesAndLengthLimits) {
  const Result<UnixAddress> abstract = MakeAddress("@quiesce-test");
  ASSERT_OK(abstract);
  EXPECT_EQ(abstract.value().addr.sun_path[0], '\0');
  EXPECT_EQ(std::string(abstract.value().addr.sun_path + 1, 12),
            "quiesce-test");
  EXPECT_THAT(MakeAddress("@"),
              IsError(ErrorCode::kBadRequest, HasSubstr("after '@'")));
  EXPECT_THAT(MakeAddress(""),
              IsError(ErrorCode::kBadRequest, HasSubstr("bytes long")));
  EXPECT_THAT(MakeAddress("/" + std::string(200, 'a')),
              IsError(ErrorCode::kBadRequest, HasSubstr("bytes long")));
}

TEST(Listen, MakesA0600SocketAndUnlinksItAgain) {
  TempDir dir;
  const std::string path = dir.File("s.sock");
  Result<Listener> listener = Listen(path, false);
  ASSERT_OK(listener);
  struct stat st;
  ASSERT_EQ(lstat(path.c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  Unlisten(&listener.value());
  EXPECT_NE(lstat(path.c_str(), &st), 0);
}

TEST(Listen, CreatesTheDefaultDirectoryPrivate) {
  TempDir dir;
  const std::string sub = dir.File("quiesce");
  Result<Listener> listener = Listen(sub + "/1.sock", true);
  ASSERT_OK(listener);
  struct stat st;
  ASSERT_EQ(stat(sub.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  Unlisten(&listener.value());
}

TEST(Listen, RefusesADirectoryOthersCanEnter) {
  TempDir dir;
  ASSERT_EQ(chmod(dir.path().c_str(), 0755), 0);
  EXPECT_THAT(Listen(dir.File("s.sock"), false),
              IsError(ErrorCode::kForbidden, HasSubstr("mode 755")));
}

TEST(Listen, RefusesADirectoryOwnedBySomeoneElse) {
  if (geteuid() != 0) {
    GTEST_SKIP() << "needs root to give a directory to another uid";
  }
  TempDir dir;
  ASSERT_EQ(chown(dir.path().c_str(), 65534, 65534), 0);
  EXPECT_THAT(Listen(dir.File("s.sock"), false),
              IsError(ErrorCode::kForbidden, HasSubstr("owned by uid 65534")));
}

TEST(Listen, ReplacesAStaleSocket) {
  TempDir dir;
  const std::string path = dir.File("s.sock");
  {
    // A host that died without unlinking: the file stays, nobody listens.
    Result<Listener> dead = Listen(path, false);
    ASSERT_OK(dead);
    dead.value().fd.reset();
  }
  Result<Listener> listener = Listen(path, false);
  ASSERT_OK(listener);
  UniqueFd client = ConnectUnix(path, 1000);
  EXPECT_TRUE(client) << "the new socket accepts connections";
  Unlisten(&listener.value());
}

TEST(Listen, KeepsALiveSocket) {
  TempDir dir;
  const std::string path = dir.File("s.sock");
  Result<Listener> live = Listen(path, false);
  ASSERT_OK(live);
  EXPECT_THAT(Listen(path, false),
              IsError(ErrorCode::kBusy, HasSubstr("live")));
  EXPECT_TRUE(ConnectUnix(path, 1000)) << "the first socket still serves";
  Unlisten(&live.value());
}

TEST(Listen, NeverReplacesAFileThatIsNotASocket) {
  TempDir dir;
  const std::string path = dir.File("s.sock");
  FILE* f = fopen(path.c_str(), "w");
  ASSERT_NE(f, nullptr);
  fclose(f);
  EXPECT_THAT(Listen(path, false),
              IsError(ErrorCode::kBusy, HasSubstr("not a stale socket")));
  struct stat st;
  EXPECT_EQ(lstat(path.c_str(), &st), 0);
  EXPECT_TRUE(S_ISREG(st.st_mode));
}

TEST(Listen, AbstractNamesNeedNoDirectory) {
  const std::string name = "@quiesce-test-" + std::to_string(getpid());
  Result<Listener> listener = Listen(name, false);
  ASSERT_OK(listener);
  EXPECT_THAT(Listen(name, false), IsError(ErrorCode::kIoError, _))
      << "names are unique";
  UniqueFd client = ConnectUnix(name, 1000);
  ASSERT_TRUE(client);
  PeerCreds server;
  ASSERT_TRUE(ReadPeerCreds(client.get(), &server));
  EXPECT_EQ(server.uid, geteuid());
  EXPECT_EQ(server.pid, getpid());
  Unlisten(&listener.value());
}

}  // namespace
}  // namespace quiesce::control
