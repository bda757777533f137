// Injections into a live database: all or nothing, within what the
// authorizer allows, and never an error for the host's own transactions.
#include "inject.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "context.h"
#include "result_matchers.h"
#include "support.h"

namespace quiesce::testing {
namespace {

using Clock = std::chrono::steady_clock;

InjectRequest Sql(std::string sql) {
  InjectRequest r;
  r.sql = std::move(sql);
  r.deadline = Clock::now() + std::chrono::seconds(3);
  return r;
}

class InjectTest : public ::testing::TestWithParam<const char*> {
 public:
  Result<InjectResult> Run(const InjectRequest& r) {
    return Inject(*Find(path_), r);
  }
  int64_t Count(const char* who) {
    return host_->Int(std::string("SELECT count(*) FROM t WHERE who='") + who +
                      "'");
  }
  const std::string& path() const { return path_; }
  Conn& host() { return *host_; }

 protected:
  void SetUp() override {
    path_ = dir_.File("live.db");
    host_ = std::make_unique<Conn>(path_);
    host_->Must(std::string("PRAGMA journal_mode=") + GetParam());
    host_->Must("CREATE TABLE t(id INTEGER PRIMARY KEY, who TEXT NOT NULL, "
                "v BLOB)");
    host_->Must("INSERT INTO t(who) VALUES ('host')");
  }

  TempDir dir_;
  std::string path_;
  std::unique_ptr<Conn> host_;
};

TEST_P(InjectTest, CommitsAsOneTransaction) {
  const uint64_t before = Info(path_).generation;
  auto r = Run(Sql("INSERT INTO t(who) VALUES ('q'); "
                   "INSERT INTO t(who) SELECT 'q' FROM t WHERE who='host'; "
                   "UPDATE t SET v = x'01' WHERE who='q'"));
  ASSERT_OK(r);
  EXPECT_TRUE(r.value().committed);
  EXPECT_EQ(r.value().statements, 3);
  EXPECT_EQ(r.value().changes, 4);
  EXPECT_EQ(r.value().generation, before + 1);
  EXPECT_EQ(Info(path_).generation, before + 1);
  EXPECT_EQ(Count("q"), 2);
  host_->Must("INSERT INTO t(who) VALUES ('host')");  // the host goes on
  EXPECT_EQ(Info(path_).generation, before + 2);
}

TEST_P(InjectTest, RepliesWithTheRowidOfItsLastInsert) {
  auto r = Run(Sql("INSERT INTO t(who) VALUES ('q'); "
                   "UPDATE t SET v = x'01' WHERE who='host'"));
  ASSERT_OK(r);
  EXPECT_EQ(r.value().last_insert_rowid,
            host_->Int("SELECT id FROM t WHERE who='q'"));
  auto none = Run(Sql("UPDATE t SET v = x'02'"));
  ASSERT_OK(none);
  EXPECT_EQ(none.value().last_insert_rowid, 0);
}

TEST_P(InjectTest, AFailingStatementAppliesNothing) {
  const uint64_t before = Info(path_).generation;
  auto r = Run(Sql("INSERT INTO t(who) VALUES ('q'); "
                   "INSERT INTO t(who) VALUES (NULL)"));
  ASSERT_THAT(r, IsError(ErrorCode::kSqlError, _));
  EXPECT_NE(r.error().message.find("NOT NULL"), std::string::npos)
      << r.error().message;
  EXPECT_EQ(Count("q"), 0);
  EXPECT_EQ(Info(path_).generation, before);
  EXPECT_FALSE(Info(path_).gate_closed);
}

TEST_P(InjectTest, DryRunReportsAndRollsBack) {
  InjectRequest req = Sql("DELETE FROM t");
  req.dry_run = true;
  auto r = Run(req);
  ASSERT_OK(r);
  EXPECT_FALSE(r.value().committed);
  EXPECT_EQ(r.value().changes, 1);
  EXPECT_EQ(Count("host"), 1);
}

TEST_P(InjectTest, TheAuthorizerRefusesWhatCouldHurtTheHost) {
  const uint64_t before = Info(path_).generation;
  const char* const kRefused[] = {
      "ATTACH ':memory:' AS x",
      "INSERT INTO t(who) VALUES ('q'); COMMIT",
      "BEGIN; INSERT INTO t(who) VALUES ('q')",
      "SAVEPOINT s",
      "SELECT load_extension('/tmp/x')",
      "CREATE TABLE u(x)",
      "DROP TABLE t",
      "CREATE VIRTUAL TABLE v USING fts5(x)",
      "PRAGMA journal_mode=DELETE",
      "PRAGMA writable_schema=ON",
      "PRAGMA locking_mode=EXCLUSIVE",
  };
  for (const char* sql : kRefused) {
    auto r = Run(Sql(sql));
    ASSERT_THAT(r, IsError(ErrorCode::kForbidden, _)) << sql;
  }
  EXPECT_EQ(Count("q"), 0);
  EXPECT_EQ(Info(path_).generation, before);
  EXPECT_EQ(host_->Text("PRAGMA journal_mode"), GetParam());
}

TEST_P(InjectTest, DdlWhenTheHostAllowsIt) {
  InjectRequest req = Sql("CREATE TABLE u(x); INSERT INTO u VALUES (1)");
  req.allow_ddl = true;
  auto r = Run(req);
  ASSERT_OK(r);
  EXPECT_EQ(host_->Int("SELECT count(*) FROM u"), 1);
}

TEST_P(InjectTest, BlobsAndAStagedDatabase) {
  const std::string staged = dir_.File("staged.db");
  {
    Conn s(staged, "unix");
    s.Must("CREATE TABLE rows(who TEXT, v BLOB)");
    s.Must("INSERT INTO rows VALUES ('staged', x'cafe'), ('staged', NULL)");
  }
  const int fd = open(staged.c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  InjectRequest req =
      Sql("INSERT INTO t(who, v) VALUES ('q', :payload); "
          "INSERT INTO t(who, v) SELECT who, v FROM incoming.rows");
  req.blobs["payload"] = std::string("\0\1\2binary", 9);
  req.attach_fd = fd;
  req.attach_name = "incoming";
  auto r = Run(req);
  close(fd);
  ASSERT_OK(r);
  EXPECT_EQ(Count("staged"), 2);
  EXPECT_EQ(host_->Int("SELECT length(v) FROM t WHERE who='q'"), 9);
}

TEST_P(InjectTest, AMissingParameterIsABadRequest) {
  auto r = Run(Sql("INSERT INTO t(who, v) VALUES ('q', :nothing)"));
  ASSERT_THAT(r, IsError(ErrorCode::kBadRequest, _));
}

TEST_P(InjectTest, AScriptThatRunsTooLongIsRolledBack) {
  InjectRequest req =
      Sql("INSERT INTO t(who) VALUES ('q'); "
          "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c) "
          "INSERT INTO t(who) SELECT 'q' FROM c");
  req.deadline = Clock::now() + std::chrono::milliseconds(200);
  auto r = Run(req);
  ASSERT_THAT(r, IsError(ErrorCode::kTimeout, _));
  EXPECT_EQ(Count("q"), 0);
  host_->Must("INSERT INTO t(who) VALUES ('host')");
}

TEST_P(InjectTest, AnOpenHostReaderHoldsTheDrainUnlessAllowed) {
  Conn reader(path_);
  reader.Must("BEGIN");
  EXPECT_EQ(reader.Int("SELECT count(*) FROM t"), 1);  // a read transaction
  InjectRequest req = Sql("INSERT INTO t(who) VALUES ('q')");
  req.deadline = Clock::now() + std::chrono::milliseconds(200);
  auto r = Run(req);
  ASSERT_THAT(r, IsError(ErrorCode::kTimeout, _));
  EXPECT_NE(r.error().message.find("handle"), std::string::npos)
      << r.error().message;
  if (std::string(GetParam()) == "wal") {
    // A WAL reader does not block a writer: the client may choose to let
    // it run, at its documented risk (that reader cannot write afterwards).
    req.readers_may_proceed = true;
    req.deadline = Clock::now() + std::chrono::seconds(2);
    auto r2 = Run(req);
    ASSERT_OK(r2);
    EXPECT_EQ(reader.Int("SELECT count(*) FROM t"), 1);  // its snapshot
  }
  reader.Must("COMMIT");
  EXPECT_EQ(Info(path_).gate.stall_timeouts, 0u);
}

// How the host runs its connections while injections stream in.
enum class HostShape {
  // Gecko's: an origin's connections take turns on one thread and nothing
  // sets a busy handler, so any error a transaction meets is quiesce's.
  kOneAtATime,
  // A reader that runs beside the writers. SQLite itself can then answer a
  // writer SQLITE_BUSY, with or without quiesce: in WAL mode a reader that
  // catches the wal-index header while a commit rewrites it takes the WRITE
  // lock to read it again (walIndexReadHdr), and in rollback mode a commit
  // locks readers out. Such a host needs a busy handler anyway, and writers
  // that BEGIN IMMEDIATE (SQLite never calls the handler when a deferred
  // transaction upgrades); with those, no transaction may fail.
  kFreeReaderWithBusyHandler,
};

// The host commits as fast as it can on two threads (BEGIN IMMEDIATE, and
// in the Gecko shape a deferred BEGIN that upgrades), plus a thread of read
// transactions, while injections stream in. Fails the test on any host
// error, lost row, or wait that ran to max_stall.
void HostTransactionsBesideInjections(InjectTest& test, HostShape shape) {
  const bool free_reader = shape == HostShape::kFreeReaderWithBusyHandler;
  std::atomic<bool> stop{false};
  std::atomic<int> host_errors{0};
  std::atomic<int> host_commits{0};
  std::mutex serial;
  std::mutex first_error_mu;
  std::string first_error;
  auto open = [&] {
    auto c = std::make_unique<Conn>(test.path());
    // Far beyond max_stall: a wait this long is a hang, not contention.
    if (free_reader) sqlite3_busy_timeout(c->get(), 10000);
    return c;
  };
  auto failed = [&](Conn& c, const char* who) {
    if (host_errors++ == 0) {
      std::lock_guard<std::mutex> lock(first_error_mu);
      first_error = std::string(who) + ": " + sqlite3_errmsg(c.get()) +
                    " (extended code " +
                    std::to_string(sqlite3_extended_errcode(c.get())) + ")";
    }
    c.Exec("ROLLBACK");
  };
  auto writer = [&](bool immediate) {
    auto c = open();
    const std::string sql =
        std::string(immediate ? "BEGIN IMMEDIATE" : "BEGIN") +
        "; SELECT count(*) FROM t; INSERT INTO t(who) VALUES ('host'); "
        "COMMIT";
    while (!stop.load()) {
      std::lock_guard<std::mutex> lock(serial);
      if (c->Exec(sql) != SQLITE_OK) {
        failed(*c, "a host writer");
      } else {
        ++host_commits;
      }
    }
  };
  auto reader = [&] {
    auto c = open();
    while (!stop.load()) {
      std::unique_lock<std::mutex> lock(serial, std::defer_lock);
      if (!free_reader) lock.lock();
      if (c->Exec("BEGIN; SELECT count(*) FROM t; COMMIT") != SQLITE_OK) {
        failed(*c, "the host reader");
      }
    }
  };
  std::thread w1(writer, true), w2(writer, free_reader), rd(reader);
  int injected = 0;
  const auto give_up = Clock::now() + std::chrono::seconds(60);
  while ((injected < 60 || host_commits.load() < 300) &&
         Clock::now() < give_up) {
    auto r = test.Run(Sql("INSERT INTO t(who) VALUES ('q'); "
                          "INSERT INTO t(who) VALUES ('q'); "
                          "INSERT INTO t(who) VALUES ('q')"));
    if (!r.ok()) {  // not ASSERT: the host threads must be joined first
      ADD_FAILURE() << "injection " << injected << ": " << r.error().message;
      break;
    }
    ++injected;
  }
  stop = true;
  w1.join();
  w2.join();
  rd.join();
  EXPECT_EQ(host_errors.load(), 0) << first_error;
  EXPECT_EQ(test.Count("q"), 3 * injected);
  EXPECT_EQ(test.Count("host"), 1 + host_commits.load());
  EXPECT_EQ(test.host().Text("PRAGMA integrity_check"), "ok");
  const DatabaseInfo info = Info(test.path());
  EXPECT_EQ(info.gate.stall_timeouts, 0u);
  EXPECT_GE(info.gate.closes, static_cast<uint64_t>(injected));
}

TEST_P(InjectTest, HostTransactionsNeverFail) {
  HostTransactionsBesideInjections(*this, HostShape::kOneAtATime);
}

TEST_P(InjectTest, HostTransactionsNeverFailWithAFreeReader) {
  HostTransactionsBesideInjections(*this,
                                   HostShape::kFreeReaderWithBusyHandler);
}

INSTANTIATE_TEST_SUITE_P(Modes, InjectTest,
                         ::testing::Values("wal", "delete"));

TEST(Inject, ExclusiveLockingIsRefused) {
  TempDir dir;
  const std::string path = dir.File("x.db");
  Conn c(path);
  c.Must("PRAGMA locking_mode=EXCLUSIVE; CREATE TABLE t(x)");
  auto r = Inject(*Find(path), Sql("INSERT INTO t VALUES (1)"));
  ASSERT_THAT(r, IsError(ErrorCode::kUnsupported, _));
}

}  // namespace
}  // namespace quiesce::testing

namespace quiesce::testing {
namespace {

// Another process writes the same database (with a busy timeout of its
// own: quiesce promises nothing about it) while injections stream in.
TEST(InjectForeign, AnotherProcessWritingToo) {
  if (std::system("command -v sqlite3 >/dev/null") != 0) {
    GTEST_SKIP() << "the sqlite3 command (Debian package sqlite3) is missing";
  }
  TempDir dir;
  const std::string path = dir.File("shared.db");
  Conn host(path);
  host.Must("PRAGMA journal_mode=WAL; CREATE TABLE t(id INTEGER PRIMARY KEY, "
            "who TEXT)");
  std::ofstream(dir.File("other.sql"))
      << "PRAGMA busy_timeout=5000; INSERT INTO t(who) VALUES ('other');\n";
  const std::string foreign =
      "env -u LD_PRELOAD sh -c 'for i in $(seq 60); do sqlite3 " + path +
      " < " + dir.File("other.sql") + " >/dev/null || exit 1; done; touch " +
      dir.File("done") + "' &";
  ASSERT_EQ(std::system(foreign.c_str()), 0);
  int injected = 0;
  const auto give_up = Clock::now() + std::chrono::seconds(60);
  while (!std::filesystem::exists(dir.File("done")) && Clock::now() < give_up) {
    auto r = Inject(*Find(path), Sql("INSERT INTO t(who) VALUES ('q')"));
    ASSERT_OK(r);
    ++injected;
  }
  ASSERT_TRUE(std::filesystem::exists(dir.File("done")))
      << "the other process did not finish";
  EXPECT_EQ(host.Int("SELECT count(*) FROM t WHERE who='q'"), injected);
  EXPECT_EQ(host.Int("SELECT count(*) FROM t WHERE who='other'"), 60);
  EXPECT_EQ(host.Text("PRAGMA integrity_check"), "ok");
}

}  // namespace
}  // namespace quiesce::testing
