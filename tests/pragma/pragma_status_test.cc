// PRAGMA quiesce_status (vfs/pragma_status.h): what a connection sees of
// the shim's state is what the control channel's status shows.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <string>

#include "describe.h"
#include "pragma_status.h"
#include "support.h"

namespace quiesce::testing {
namespace {

using json = nlohmann::json;

class PragmaStatus : public ::testing::Test {
 protected:
  void SetUp() override { RegisterShims(); }
  TempDir dir_;
};

TEST_F(PragmaStatus, JsonMatchesTheControlChannelsStatus) {
  const std::string path = dir_.File("wal.db");
  Conn c(path);
  c.Must("PRAGMA journal_mode=WAL");
  c.Must("CREATE TABLE t(x)");
  const uint64_t before =
      json::parse(c.Text("PRAGMA quiesce_status=json"))["generation"];
  for (int i = 0; i < 3; ++i) c.Must("INSERT INTO t VALUES(randomblob(100))");

  const json got = json::parse(c.Text("PRAGMA quiesce_status=json"));
  const json want = control::DescribeStatus(Info(path));
  // Every key the control channel's status has, with the same value, but
  // the per-handle lock list (not a pragma's business).
  for (const auto& [key, value] : want.items()) {
    if (key == "handle_locks") continue;
    ASSERT_TRUE(got.contains(key)) << key;
    EXPECT_EQ(got[key], value) << key;
  }
  EXPECT_EQ(got["journal_mode"], "wal");
  EXPECT_EQ(got["generation"], before + 3);  // three INSERTs
  EXPECT_GT(got["position"]["mx_frame"].get<uint64_t>(), 0u);
  EXPECT_EQ(got["gate"]["closed"], false);
  EXPECT_TRUE(got["gate"].contains("closes"));
  EXPECT_TRUE(got["host_waits"]["own_lock"].contains("count"));
}

TEST_F(PragmaStatus, TextIsKeyValueLines) {
  const std::string path = dir_.File("rollback.db");
  Conn c(path);
  c.Must("CREATE TABLE t(x)");
  c.Must("INSERT INTO t VALUES(1)");
  const std::string text = c.Text("PRAGMA quiesce_status");
  EXPECT_EQ(text, c.Text("PRAGMA quiesce_status = TEXT"));
  const DatabaseInfo info = Info(path);
  EXPECT_NE(text.find("path=" + info.path + "\n"), std::string::npos) << text;
  EXPECT_NE(text.find("journal_mode=delete\n"), std::string::npos) << text;
  EXPECT_NE(text.find("generation=2\n"), std::string::npos) << text;
  EXPECT_NE(text.find("position.change_counter=" +
                      std::to_string(info.position.change_counter) + "\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("counters.transactions=2\n"), std::string::npos) << text;
  EXPECT_NE(text.find("gate.closed=0\n"), std::string::npos) << text;
  // Every line is key=value.
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    const std::string line = text.substr(start, end - start);
    EXPECT_NE(line.find('='), std::string::npos) << line;
    start = end + 1;
  }
}

TEST_F(PragmaStatus, UnknownFormatIsAnError) {
  Conn c(dir_.File("e.db"));
  c.Must("CREATE TABLE t(x)");
  EXPECT_EQ(c.Exec("PRAGMA quiesce_status=xml"), SQLITE_ERROR);
  EXPECT_NE(std::string(sqlite3_errmsg(c.get())).find("text or json"),
            std::string::npos)
      << sqlite3_errmsg(c.get());
}

TEST_F(PragmaStatus, ADatabaseNotThroughTheShimHasNoStatus) {
  Conn c(dir_.File("plain.db"), "unix");
  c.Must("CREATE TABLE t(x)");
  sqlite3_stmt* stmt = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(c.get(), "PRAGMA quiesce_status", -1, &stmt,
                               nullptr),
            SQLITE_OK);
  EXPECT_EQ(sqlite3_step(stmt), SQLITE_DONE);  // no row: SQLite ignores it
  sqlite3_finalize(stmt);
}

TEST(PragmaStatusFormat, JsonEscapesThePath) {
  DatabaseInfo info;
  info.path = std::string("/tmp/a \"quoted\"\\ path\nwith\ttabs\x01 caf\xc3\xa9 "
                          "bad\xff\xc0\x80 end");
  const json got = json::parse(FormatStatusJson(info));
  EXPECT_EQ(got["path"],
            "/tmp/a \"quoted\"\\ path\nwith\ttabs\x01 caf\xc3\xa9 "
            "bad\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd end");
}

TEST(PragmaStatusFormat, TextKeepsOneLinePerKey) {
  DatabaseInfo info;
  info.path = "/tmp/two\nlines";
  const std::string text = FormatStatusText(info);
  EXPECT_NE(text.find("path=/tmp/two\\nlines\n"), std::string::npos) << text;
}

}  // namespace
}  // namespace quiesce::testing
