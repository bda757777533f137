// quiesce_attach in a process whose SQLite is in use: a Gecko-like VFS
// stack built before the attach (layers that copied the base VFS's method
// pointers and call its xOpen at every open), connections open across the
// attach in every journal mode over "unix" and "unix-excl".
//
// This binary never calls quiesce_register: the attach is the only way
// the shim gets in, as in a stock GeckoView app. The global environment
// below opens the "before" connections and then attaches, once.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <unistd.h>

#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "../control/client.h"
#include "context.h"
#include "image_check.h"
#include "inject.h"
#include "quiesce/quiesce.h"
#include "snapshot.h"
#include "result_matchers.h"
#include "support.h"
#include "untracked.h"

namespace quiesce::testing {
namespace {

// --- an outer VFS in Gecko's manner, built before the attach ---------------

struct OuterFile {
  sqlite3_file base;
  sqlite3_file* inner;  // right after this struct
};
sqlite3_file* In(sqlite3_file* f) {
  return reinterpret_cast<OuterFile*>(f)->inner;
}
#define FORWARD(slot, ret, params, args) \
  ret Outer##slot params { return In(f)->pMethods->x##slot args; }
FORWARD(Close, int, (sqlite3_file* f), (In(f)))
FORWARD(Read, int, (sqlite3_file* f, void* b, int n, sqlite3_int64 o),
        (In(f), b, n, o))
FORWARD(Write, int, (sqlite3_file* f, const void* b, int n, sqlite3_int64 o),
        (In(f), b, n, o))
FORWARD(Truncate, int, (sqlite3_file* f, sqlite3_int64 s), (In(f), s))
FORWARD(Sync, int, (sqlite3_file* f, int fl), (In(f), fl))
FORWARD(FileSize, int, (sqlite3_file* f, sqlite3_int64* s), (In(f), s))
FORWARD(Lock, int, (sqlite3_file* f, int l), (In(f), l))
FORWARD(Unlock, int, (sqlite3_file* f, int l), (In(f), l))
FORWARD(CheckReservedLock, int, (sqlite3_file* f, int* r), (In(f), r))
FORWARD(FileControl, int, (sqlite3_file* f, int op, void* a), (In(f), op, a))
FORWARD(SectorSize, int, (sqlite3_file* f), (In(f)))
FORWARD(DeviceCharacteristics, int, (sqlite3_file* f), (In(f)))
FORWARD(ShmMap, int, (sqlite3_file* f, int p, int s, int e, void volatile** pp),
        (In(f), p, s, e, pp))
FORWARD(ShmLock, int, (sqlite3_file* f, int o, int n, int fl),
        (In(f), o, n, fl))
FORWARD(ShmBarrier, void, (sqlite3_file* f), (In(f)))
FORWARD(ShmUnmap, int, (sqlite3_file* f, int d), (In(f), d))
#undef FORWARD

const sqlite3_io_methods kOuterMethods = {
    2, OuterClose, OuterRead, OuterWrite, OuterTruncate, OuterSync,
    OuterFileSize, OuterLock, OuterUnlock, OuterCheckReservedLock,
    OuterFileControl, OuterSectorSize, OuterDeviceCharacteristics,
    OuterShmMap, OuterShmLock, OuterShmBarrier, OuterShmUnmap, nullptr,
    nullptr};

struct Outer {
  sqlite3_vfs vfs;
  sqlite3_vfs* inner;   // the live base VFS, as Gecko keeps it
  std::string name;
};
Outer g_outers[2];

int OuterOpen(sqlite3_vfs* vfs, const char* name, sqlite3_file* f, int flags,
              int* out) {
  auto* outer = static_cast<Outer*>(vfs->pAppData);
  auto* of = reinterpret_cast<OuterFile*>(f);
  of->inner = reinterpret_cast<sqlite3_file*>(of + 1);
  std::memset(of->inner, 0, static_cast<size_t>(outer->inner->szOsFile));
  // Called through the wrapped VFS at every open, as Gecko's base-vfs does.
  const int rc =
      outer->inner->xOpen(outer->inner, name, of->inner, flags, out);
  f->pMethods = rc == SQLITE_OK ? &kOuterMethods : nullptr;
  return rc;
}

void BuildOuter(Outer* outer, const char* base, const char* name) {
  outer->inner = sqlite3_vfs_find(base);
  ASSERT_NE(outer->inner, nullptr) << base;
  outer->name = name;
  outer->vfs = *outer->inner;  // every method pointer, copied now
  outer->vfs.zName = outer->name.c_str();
  outer->vfs.pAppData = outer;
  outer->vfs.szOsFile =
      static_cast<int>(sizeof(OuterFile)) + outer->inner->szOsFile;
  outer->vfs.xOpen = OuterOpen;
  ASSERT_EQ(sqlite3_vfs_register(&outer->vfs, 0), SQLITE_OK);
}

// --- connections that do not register anything ------------------------------

class Db {
 public:
  Db(const std::string& path, const char* vfs) {
    EXPECT_EQ(sqlite3_open_v2(path.c_str(), &db_,
                              SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, vfs),
              SQLITE_OK);
    sqlite3_extended_result_codes(db_, 1);
  }
  ~Db() { Close(); }
  Db(const Db&) = delete;
  Db& operator=(const Db&) = delete;
  void Close() {
    if (db_ != nullptr) {
      EXPECT_EQ(sqlite3_close(db_), SQLITE_OK);
    }
    db_ = nullptr;
  }
  void Must(const std::string& sql) {
    char* err = nullptr;
    EXPECT_EQ(sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err),
              SQLITE_OK)
        << sql << ": " << (err ? err : "");
    sqlite3_free(err);
  }
  std::string Text(const std::string& sql) {
    sqlite3_stmt* st = nullptr;
    EXPECT_EQ(sqlite3_prepare_v2(db_, sql.c_str(), -1, &st, nullptr),
              SQLITE_OK)
        << sql;
    std::string out;
    if (st && sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0)) {
      out = reinterpret_cast<const char*>(sqlite3_column_text(st, 0));
    }
    sqlite3_finalize(st);
    return out;
  }
  std::string VfsName() {
    char* name = nullptr;
    sqlite3_file_control(db_, "main", SQLITE_FCNTL_VFSNAME, &name);
    std::string out = name ? name : "";
    sqlite3_free(name);
    return out;
  }

 private:
  sqlite3* db_ = nullptr;
};

const char* const kModes[] = {"wal", "delete", "truncate", "persist",
                              "memory"};
const char* const kOuterNames[] = {"gecko-unix", "gecko-excl"};

struct Case {
  const char* vfs;
  const char* mode;
};
std::string CaseName(const Case& c) {
  return std::string(c.vfs) + "_" + c.mode;
}

std::vector<Case> AllCases() {
  std::vector<Case> cases;
  for (const char* vfs : kOuterNames) {
    for (const char* mode : kModes) cases.push_back({vfs, mode});
  }
  return cases;
}

// What the environment made before the attach, for the tests.
struct World {
  std::unique_ptr<TempDir> dir;
  std::map<std::string, std::unique_ptr<Db>> before;  // by CaseName
  sqlite3_vfs* unix_before = nullptr;
  sqlite3_vfs* excl_before = nullptr;
  int unix_size_before = 0;
  quiesce_attach_report report{};
  int attach_rc = -1;
  std::string socket;
};
World* g_world = nullptr;

std::string BeforePath(const Case& c) {
  return g_world->dir->File("before-" + CaseName(c) + ".db");
}

void OpenWritten(Db& db, const char* mode) {
  EXPECT_EQ(db.Text(std::string("PRAGMA journal_mode=") + mode), mode);
  db.Must("CREATE TABLE IF NOT EXISTS seq(n INTEGER PRIMARY KEY, v BLOB)");
  db.Must("INSERT INTO seq SELECT coalesce(max(n),0)+1, randomblob(3000) "
          "FROM seq");
}

class AttachEnvironment : public ::testing::Environment {
 public:
  void SetUp() override {
    g_world = new World();
    World& w = *g_world;
    w.dir = std::make_unique<TempDir>();
    w.unix_before = sqlite3_vfs_find("unix");
    w.excl_before = sqlite3_vfs_find("unix-excl");
    w.unix_size_before = w.unix_before->szOsFile;
    BuildOuter(&g_outers[0], "unix", kOuterNames[0]);
    BuildOuter(&g_outers[1], "unix-excl", kOuterNames[1]);
    for (const Case& c : AllCases()) {
      auto db = std::make_unique<Db>(BeforePath(c), c.vfs);
      OpenWritten(*db, c.mode);
      w.before[CaseName(c)] = std::move(db);
    }
    ASSERT_EQ(Context::Get(), nullptr) << "nothing registered before";
    quiesce_attach_config config{};
    config.size = sizeof(config);
    config.max_stall_ms = 5000;
    config.writable = "1";
    w.socket = w.dir->File("control.sock");
    config.socket_path = w.socket.c_str();
    w.report.size = sizeof(w.report);
    config.report = &w.report;
    w.attach_rc = quiesce_attach(&config);
  }
};

const auto* const g_env =
    ::testing::AddGlobalTestEnvironment(new AttachEnvironment());

TEST(Attach, WrapsTheLiveVfsesInPlace) {
  World& w = *g_world;
  ASSERT_EQ(w.attach_rc, SQLITE_OK) << w.report.message;
  EXPECT_EQ(w.report.already_attached, 0);
  EXPECT_GE(w.report.vfs_count, 2);
  EXPECT_NE(std::string(w.report.vfs_names).find("unix-excl"),
            std::string::npos);
  EXPECT_NE(std::string(w.report.sqlite_library), "");
  EXPECT_EQ(std::string(w.report.socket_path), w.socket);
  // Same objects, same file size: layers above keep what they learnt.
  EXPECT_EQ(sqlite3_vfs_find("unix"), w.unix_before);
  EXPECT_EQ(sqlite3_vfs_find("unix-excl"), w.excl_before);
  EXPECT_EQ(w.unix_before->szOsFile, w.unix_size_before);
  ASSERT_NE(Context::Get(), nullptr);
  EXPECT_TRUE(Context::Get()->attached());
}

TEST(Attach, ASecondAttachIsANoOpThatReportsTheFirst) {
  World& w = *g_world;
  const auto open_before = w.unix_before->xOpen;
  const auto delete_before = w.unix_before->xDelete;
  const char* const only_excl[] = {"unix-excl", nullptr};
  quiesce_attach_report report{};
  report.size = sizeof(report);
  quiesce_attach_config config{};
  config.size = sizeof(config);
  config.vfs_names = only_excl;
  config.socket_path = "/nonexistent/dir/never.sock";
  config.report = &report;
  EXPECT_EQ(quiesce_attach(&config), SQLITE_OK);
  EXPECT_EQ(report.already_attached, 1);
  EXPECT_EQ(report.result, SQLITE_OK);
  EXPECT_EQ(report.vfs_count, w.report.vfs_count);
  EXPECT_STREQ(report.vfs_names, w.report.vfs_names);
  EXPECT_STREQ(report.socket_path, w.socket.c_str());  // not the new one
  EXPECT_EQ(quiesce_attach(nullptr), SQLITE_OK);
  // Nothing wrapped twice.
  EXPECT_EQ(w.unix_before->xOpen, open_before);
  EXPECT_EQ(w.unix_before->xDelete, delete_before);
}

class AttachModes : public ::testing::TestWithParam<Case> {};

TEST_P(AttachModes, OpenedBeforeIsUntrackedAndRefused) {
  const Case c = GetParam();
  const std::string path = BeforePath(c);
  Db& old = *g_world->before.at(CaseName(c));
  // The host's connection keeps working across the attach, untouched.
  old.Must("INSERT INTO seq SELECT max(n)+1, randomblob(3000) FROM seq");
  EXPECT_EQ(old.VfsName().find("quiesce"), std::string::npos);
  EXPECT_EQ(Context::Get()->FindByPath(path), nullptr);
  bool listed = false;
  for (const UntrackedDatabase& u : ScanUntracked(*Context::Get())) {
    if (u.path == path) {
      listed = true;
      EXPECT_FALSE(u.partly_tracked);
    }
  }
  EXPECT_TRUE(listed) << path << " is not listed as untracked";

  // A new connection to the same database is tracked, the database only
  // partly: everything that needs the whole of it is refused.
  Db fresh(path, c.vfs);
  fresh.Must("INSERT INTO seq SELECT max(n)+1, randomblob(3000) FROM seq");
  auto db = Context::Get()->FindByPath(path);
  ASSERT_NE(db, nullptr);
  auto check = CheckFullyTracked(*db, true);
  ASSERT_THAT(check, IsError(ErrorCode::kUnsupported, _));
  EXPECT_NE(check.error().message.find(kOpenedBeforeAttach),
            std::string::npos)
      << check.error().message;
  EXPECT_EQ(old.Text("PRAGMA integrity_check"), "ok");
}

// Over the control channel: list shows the database opened before as
// untracked, and snapshot, hold and inject of it are refused, whether the
// shim knows it (partly tracked) or not at all.
TEST(Attach, ClientsAreToldWhatWasOpenedBefore) {
  const Case c{kOuterNames[1], "wal"};
  const std::string path = BeforePath(c);
  std::string error;
  auto client = control::Client::Connect(g_world->socket, 10000, &error);
  ASSERT_NE(client, nullptr) << error;
  control::Message reply;
  ASSERT_EQ(client->Call("list", control::json::object(), &reply, 10000,
                         &error),
            control::Client::Status::kOk)
      << error;
  ASSERT_TRUE(reply.ok) << reply.error_message;
  bool listed = false;
  for (const auto& u : reply.result["untracked"]) {
    if (u["path"] == path) {
      listed = true;
      EXPECT_EQ(u["reason"], kOpenedBeforeAttach);
    }
  }
  EXPECT_TRUE(listed) << reply.result.dump();
  for (const char* op : {"hold", "inject"}) {
    control::json args = {{"db", path}};
    if (std::string(op) == "inject") args["sql"] = "SELECT 1";
    ASSERT_EQ(client->Call(op, args, &reply, 10000, &error),
              control::Client::Status::kOk);
    EXPECT_EQ(reply.error_code, "unsupported") << op;
    EXPECT_NE(reply.error_message.find(kOpenedBeforeAttach),
              std::string::npos)
        << op << ": " << reply.error_message;
  }
  // Partly tracked: a connection opened after the attach is tracked.
  Db fresh(path, c.vfs);
  fresh.Must("SELECT 1 FROM seq");
  const std::string image = g_world->dir->File("refused.image");
  const int out = open(image.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  ASSERT_GE(out, 0);
  ASSERT_EQ(client->Call("snapshot", {{"db", path}}, &reply, 10000, &error,
                         {out}),
            control::Client::Status::kOk);
  close(out);
  EXPECT_EQ(reply.error_code, "unsupported");
  EXPECT_NE(reply.error_message.find(kOpenedBeforeAttach), std::string::npos)
      << reply.error_message;
}

// Snapshot, hold and inject on a database opened after the attach through
// layers built before it; `host` keeps its connection open.
void EverythingWorks(const std::string& path, Db& host, bool wal) {
  auto db = Context::Get()->FindByPath(path);
  ASSERT_NE(db, nullptr) << "not tracked: " << path;
  ASSERT_TRUE(CheckFullyTracked(*db, true).ok())
      << CheckFullyTracked(*db, true).error().message;
  EXPECT_EQ(host.VfsName().rfind("quiesce/", 0), 0u) << host.VfsName();

  // Commit tracking: one generation per commit.
  const uint64_t before = db->Info().generation;
  for (int i = 0; i < 4; ++i) {
    host.Must("INSERT INTO seq SELECT max(n)+1, randomblob(3000) FROM seq");
  }
  EXPECT_EQ(db->Info().generation, before + 4);
  if (wal) {
    EXPECT_EQ(JournalModeName(db->Info().journal_mode), std::string("wal"));
  }

  // Snapshot.
  const std::string image = path + ".image";
  auto snap = SnapshotTo(path, image);
  ASSERT_OK(snap);
  EXPECT_EQ(snap.value().point.generation, db->Info().generation);
  EXPECT_EQ(CheckImage(image), std::stoll(host.Text("SELECT max(n) FROM seq")));

  // Hold: a quiescent point, then the host goes on.
  const auto now = Database::Clock::now();
  auto token = db->CloseGate(Drain::kHold, false, now + std::chrono::seconds(2),
                             now + std::chrono::seconds(3));
  ASSERT_OK(token);
  EXPECT_TRUE(db->ReopenGate(token.value()));

  // Inject: the host sees the row at once.
  InjectRequest req;
  req.sql = "INSERT INTO seq VALUES (100000, x'01')";
  auto injected = Inject(*db, req);
  ASSERT_OK(injected);
  EXPECT_TRUE(injected.value().committed);
  EXPECT_EQ(host.Text("SELECT count(*) FROM seq WHERE n=100000"), "1");
  host.Must("DELETE FROM seq WHERE n=100000");
  EXPECT_EQ(host.Text("PRAGMA integrity_check"), "ok");
}

TEST_P(AttachModes, OpenedAfterThroughLayersBuiltBeforeIsTracked) {
  const Case c = GetParam();
  const std::string path =
      g_world->dir->File("after-" + CaseName(c) + ".db");
  Db host(path, c.vfs);
  OpenWritten(host, c.mode);
  EverythingWorks(path, host, std::string(c.mode) == "wal");
}

TEST_P(AttachModes, ReopenedAfterTheAttachBecomesTracked) {
  const Case c = GetParam();
  const std::string path = BeforePath(c);
  // Every connection from before closes (as Gecko closes an idle origin's).
  g_world->before.at(CaseName(c))->Close();
  Db host(path, c.vfs);
  // Only WAL is a property of the file: the host sets the others anew.
  OpenWritten(host, c.mode);
  EverythingWorks(path, host, std::string(c.mode) == "wal");
  bool listed = false;
  for (const UntrackedDatabase& u : ScanUntracked(*Context::Get())) {
    listed |= u.path == path;
  }
  EXPECT_FALSE(listed) << path << " is still listed as untracked";
}

// Exclusive locking mode, where quiesce reads through the base VFS itself:
// snapshots in a row, and its own (parked) descriptors never make the
// database look partly tracked.
class AttachExclusive : public ::testing::TestWithParam<Case> {};

TEST_P(AttachExclusive, SnapshotsAfterTheAttach) {
  const Case c = GetParam();
  const std::string path =
      g_world->dir->File("exclusive-" + CaseName(c) + ".db");
  Db host(path, c.vfs);
  host.Must("PRAGMA locking_mode=EXCLUSIVE");
  OpenWritten(host, c.mode);
  const std::string image = path + ".image";
  for (int i = 0; i < 3; ++i) {
    host.Must("INSERT INTO seq SELECT max(n)+1, randomblob(3000) FROM seq");
    auto snap = SnapshotTo(path, image);
    ASSERT_OK(snap);
    auto db = Context::Get()->FindByPath(path);
    ASSERT_NE(db, nullptr);
    EXPECT_TRUE(CheckFullyTracked(*db, true).ok())
        << CheckFullyTracked(*db, true).error().message;
  }
  EXPECT_EQ(CheckImage(image), std::stoll(host.Text("SELECT max(n) FROM seq")));
}

// watch streams the commits of a database opened after the attach.
TEST(Attach, WatchStreamsCommitsOfADatabaseOpenedAfter) {
  const std::string path = g_world->dir->File("watched.db");
  Db host(path, kOuterNames[1]);
  OpenWritten(host, "wal");
  auto db = Context::Get()->FindByPath(path);
  ASSERT_NE(db, nullptr);
  std::string error;
  auto client = control::Client::Connect(g_world->socket, 10000, &error);
  ASSERT_NE(client, nullptr) << error;
  control::Message reply;
  ASSERT_EQ(client->Call("watch", {{"db", db->id()}}, &reply, 10000, &error),
            control::Client::Status::kOk);
  ASSERT_TRUE(reply.ok) << reply.error_message;
  const uint64_t from = db->Info().generation;
  for (int i = 0; i < 3; ++i) {
    host.Must("INSERT INTO seq SELECT max(n)+1, randomblob(300) FROM seq");
  }
  std::vector<uint64_t> generations;
  while (generations.size() < 3) {
    control::Message event;
    ASSERT_EQ(client->Read(&event, 10000, &error),
              control::Client::Status::kOk)
        << error;
    if (event.is_event && event.event == "commit") {
      generations.push_back(event.body["generation"].get<uint64_t>());
    }
  }
  EXPECT_EQ(generations,
            (std::vector<uint64_t>{from + 1, from + 2, from + 3}));
}

std::string TestName(const ::testing::TestParamInfo<Case>& info) {
  std::string name = CaseName(info.param);
  for (char& ch : name) {
    if (ch == '-') ch = '_';
  }
  return name;
}

INSTANTIATE_TEST_SUITE_P(Modes, AttachModes, ::testing::ValuesIn(AllCases()),
                         TestName);
INSTANTIATE_TEST_SUITE_P(
    Modes, AttachExclusive,
    ::testing::Values(Case{kOuterNames[0], "wal"},
                      Case{kOuterNames[0], "delete"},
                      Case{kOuterNames[1], "wal"},
                      Case{kOuterNames[1], "delete"}),
    TestName);

}  // namespace
}  // namespace quiesce::testing
