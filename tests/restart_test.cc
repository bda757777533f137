// A host that restarts SQLite (sqlite3_shutdown + sqlite3_initialize) gets
// SQLite's own "unix" back at the head of the VFS list; registering again
// must put the same shim back, however often it happens.
#include <gtest/gtest.h>
#include <sqlite3.h>

#include "quiesce/quiesce.h"
#include "support.h"

namespace quiesce::testing {
namespace {

int Register() {
  quiesce_config config{};
  config.size = sizeof(config);
  config.vfs_name = "unix";  // take over the default, as Gecko's build would
  return quiesce_register(&config);
}

TEST(Restart, RegisteringAgainPutsTheSameShimBack) {
  sqlite3_vfs* original = sqlite3_vfs_find("unix");
  ASSERT_EQ(Register(), SQLITE_OK);
  sqlite3_vfs* shim = sqlite3_vfs_find(nullptr);
  ASSERT_NE(shim, original);
  ASSERT_STREQ(shim->zName, "unix");
  for (int i = 0; i < 12; ++i) {  // more restarts than the shim has slots
    ASSERT_EQ(sqlite3_shutdown(), SQLITE_OK);
    ASSERT_EQ(sqlite3_initialize(), SQLITE_OK);
    EXPECT_EQ(sqlite3_vfs_find(nullptr), original) << "SQLite's own is back";
    ASSERT_EQ(Register(), SQLITE_OK) << "restart " << i;
    EXPECT_EQ(sqlite3_vfs_find(nullptr), shim);
    EXPECT_EQ(sqlite3_vfs_find("unix"), shim);
  }
  TempDir dir;
  const std::string path = dir.File("r.db");
  Conn c(path, nullptr);
  c.Must("CREATE TABLE t(x); INSERT INTO t VALUES (1)");
  EXPECT_EQ(Info(path).generation, 2u);
}

}  // namespace
}  // namespace quiesce::testing
