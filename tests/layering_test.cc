// The shim among other VFSes: under a wrapper that copies its method
// pointers (as Gecko's base-vfs does), over a base that fails I/O, and
// beside another process that writes the same database.
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>

#include "context.h"
#include "quiesce/quiesce.h"
#include "support.h"

namespace quiesce::testing {
namespace {

// --- An outer VFS in Gecko's manner ---------------------------------------
// It copies every method pointer of the VFS it wraps except xOpen, so the
// shim's VFS-level methods are called with the outer sqlite3_vfs.

struct OuterFile {
  sqlite3_file base;
  sqlite3_file* inner;  // lives right after this struct
};

sqlite3_file* Inner(sqlite3_file* f) {
  return reinterpret_cast<OuterFile*>(f)->inner;
}

int OuterClose(sqlite3_file* f) {
  return Inner(f)->pMethods->xClose(Inner(f));
}
int OuterRead(sqlite3_file* f, void* b, int n, sqlite3_int64 o) {
  return Inner(f)->pMethods->xRead(Inner(f), b, n, o);
}
int OuterWrite(sqlite3_file* f, const void* b, int n, sqlite3_int64 o) {
  return Inner(f)->pMethods->xWrite(Inner(f), b, n, o);
}
int OuterTruncate(sqlite3_file* f, sqlite3_int64 s) {
  return Inner(f)->pMethods->xTruncate(Inner(f), s);
}
int OuterSync(sqlite3_file* f, int fl) {
  return Inner(f)->pMethods->xSync(Inner(f), fl);
}
int OuterFileSize(sqlite3_file* f, sqlite3_int64* s) {
  return Inner(f)->pMethods->xFileSize(Inner(f), s);
}
int OuterLock(sqlite3_file* f, int l) {
  return Inner(f)->pMethods->xLock(Inner(f), l);
}
int OuterUnlock(sqlite3_file* f, int l) {
  return Inner(f)->pMethods->xUnlock(Inner(f), l);
}
int OuterCheck(sqlite3_file* f, int* r) {
  return Inner(f)->pMethods->xCheckReservedLock(Inner(f), r);
}
int OuterFcntl(sqlite3_file* f, int op, void* a) {
  return Inner(f)->pMethods->xFileControl(Inner(f), op, a);
}
int OuterSector(sqlite3_file* f) {
  return Inner(f)->pMethods->xSectorSize(Inner(f));
}
int OuterDevice(sqlite3_file* f) {
  return Inner(f)->pMethods->xDeviceCharacteristics(Inner(f));
}
int OuterShmMap(sqlite3_file* f, int p, int s, int e, void volatile** pp) {
  return Inner(f)->pMethods->xShmMap(Inner(f), p, s, e, pp);
}
int OuterShmLock(sqlite3_file* f, int o, int n, int fl) {
  return Inner(f)->pMethods->xShmLock(Inner(f), o, n, fl);
}
void OuterShmBarrier(sqlite3_file* f) {
  Inner(f)->pMethods->xShmBarrier(Inner(f));
}
int OuterShmUnmap(sqlite3_file* f, int d) {
  return Inner(f)->pMethods->xShmUnmap(Inner(f), d);
}

const sqlite3_io_methods kOuterMethods = {
    2,           OuterClose,    OuterRead,    OuterWrite,     OuterTruncate,
    OuterSync,   OuterFileSize, OuterLock,    OuterUnlock,    OuterCheck,
    OuterFcntl,  OuterSector,   OuterDevice,  OuterShmMap,    OuterShmLock,
    OuterShmBarrier, OuterShmUnmap, nullptr, nullptr};

sqlite3_vfs g_outer;
sqlite3_vfs* g_outer_inner = nullptr;

int OuterOpen(sqlite3_vfs*, const char* name, sqlite3_file* f, int flags,
              int* out) {
  auto* of = reinterpret_cast<OuterFile*>(f);
  of->inner = reinterpret_cast<sqlite3_file*>(of + 1);
  std::memset(of->inner, 0, static_cast<size_t>(g_outer_inner->szOsFile));
  const int rc =
      g_outer_inner->xOpen(g_outer_inner, name, of->inner, flags, out);
  f->pMethods = rc == SQLITE_OK ? &kOuterMethods : nullptr;
  return rc;
}

void RegisterOuter() {
  static std::once_flag once;
  std::call_once(once, [] {
    RegisterShims();
    g_outer_inner = sqlite3_vfs_find("quiesce");
    ASSERT_NE(g_outer_inner, nullptr);
    g_outer = *g_outer_inner;  // every method pointer, as Gecko copies them
    g_outer.zName = "gecko-like";
    g_outer.pAppData = nullptr;
    g_outer.szOsFile =
        static_cast<int>(sizeof(OuterFile)) + g_outer_inner->szOsFile;
    g_outer.xOpen = OuterOpen;
    ASSERT_EQ(sqlite3_vfs_register(&g_outer, 0), SQLITE_OK);
  });
}

TEST(Layering, WorksUnderAWrapperThatCopiesItsMethods) {
  RegisterOuter();
  for (const char* mode : {"wal", "delete"}) {
    TempDir dir;
    const std::string path = dir.File("outer.db");
    Conn c(path, "gecko-like");
    EXPECT_EQ(c.Text(std::string("PRAGMA journal_mode=") + mode), mode);
    c.Must("CREATE TABLE t(x)");
    const uint64_t base = Info(path).generation;
    for (int i = 0; i < 5; ++i) c.Must("INSERT INTO t VALUES (1)");
    // xDelete and xAccess reach the shim with the outer sqlite3_vfs.
    c.Must("PRAGMA wal_checkpoint(TRUNCATE)");
    EXPECT_EQ(Info(path).generation, base + 5) << mode;
    EXPECT_EQ(c.Text("PRAGMA integrity_check"), "ok");
  }
}

// --- A base VFS that fails I/O on request ---------------------------------

std::atomic<int> g_fail_writes{0};  // the next N writes fail
std::atomic<int> g_fail_syncs{0};   // the next N syncs fail
sqlite3_vfs g_faulty;
sqlite3_vfs* g_unix = nullptr;

// The unix VFS gives database files and journal/WAL files different method
// tables (with and without locking): one patched copy per original.
struct Patched {
  const sqlite3_io_methods* original = nullptr;
  sqlite3_io_methods copy{};
};
std::mutex g_patch_mu;
Patched g_patched[4];

const sqlite3_io_methods* OriginalOf(sqlite3_file* f) {
  for (const Patched& p : g_patched) {
    if (&p.copy == f->pMethods) return p.original;
  }
  return nullptr;
}

int FaultyWrite(sqlite3_file* f, const void* b, int n, sqlite3_int64 o) {
  if (g_fail_writes.load() > 0 && g_fail_writes.fetch_sub(1) > 0) {
    return SQLITE_IOERR_WRITE;
  }
  return OriginalOf(f)->xWrite(f, b, n, o);
}
int FaultySync(sqlite3_file* f, int flags) {
  if (g_fail_syncs.load() > 0 && g_fail_syncs.fetch_sub(1) > 0) {
    return SQLITE_IOERR_FSYNC;
  }
  return OriginalOf(f)->xSync(f, flags);
}
int FaultyOpen(sqlite3_vfs*, const char* name, sqlite3_file* f, int flags,
               int* out) {
  const int rc = g_unix->xOpen(g_unix, name, f, flags, out);
  if (rc != SQLITE_OK || f->pMethods == nullptr) return rc;
  std::lock_guard<std::mutex> lock(g_patch_mu);
  for (Patched& p : g_patched) {
    if (p.original == nullptr) {
      p.original = f->pMethods;
      p.copy = *f->pMethods;
      p.copy.xWrite = FaultyWrite;
      p.copy.xSync = FaultySync;
    }
    if (p.original == f->pMethods) {
      f->pMethods = &p.copy;
      return rc;
    }
  }
  ADD_FAILURE() << "more method tables than the fault VFS can patch";
  return rc;
}

void RegisterFaulty() {
  static std::once_flag once;
  std::call_once(once, [] {
    RegisterShims();
    g_unix = sqlite3_vfs_find("unix");
    g_faulty = *g_unix;
    g_faulty.zName = "faulty";
    g_faulty.xOpen = FaultyOpen;
    ASSERT_EQ(sqlite3_vfs_register(&g_faulty, 0), SQLITE_OK);
    quiesce_config config{};
    config.size = sizeof(config);
    config.base_vfs = "faulty";
    config.vfs_name = "quiesce-faulty";
    ASSERT_EQ(quiesce_register(&config), SQLITE_OK);
  });
}

class FaultTest : public ::testing::TestWithParam<const char*> {};

TEST_P(FaultTest, IoErrorsReachSqliteUnchangedAndStateStaysRight) {
  RegisterFaulty();
  TempDir dir;
  const std::string path = dir.File("faults.db");
  Conn c(path, "quiesce-faulty");
  c.Must(std::string("PRAGMA journal_mode=") + GetParam());
  c.Must("PRAGMA synchronous=FULL");
  c.Must("CREATE TABLE t(x)");
  c.Must("INSERT INTO t VALUES (0)");
  const uint64_t base = Info(path).generation;

  g_fail_writes = 1;
  EXPECT_EQ(c.Exec("INSERT INTO t VALUES (randomblob(5000))"),
            SQLITE_IOERR_WRITE);
  g_fail_writes = 0;
  g_fail_syncs = 1;
  EXPECT_EQ(c.Exec("INSERT INTO t VALUES (randomblob(5000))"),
            SQLITE_IOERR_FSYNC);
  g_fail_syncs = 0;

  DatabaseInfo info = Info(path);
  EXPECT_EQ(info.generation, base);
  ASSERT_EQ(info.handles.size(), 1u);
  EXPECT_EQ(info.handles[0].shm_exclusive, 0) << "a lock was left behind";
  EXPECT_LE(info.handles[0].lock_level, SQLITE_LOCK_SHARED);

  c.Must("INSERT INTO t VALUES (1)");
  EXPECT_EQ(Info(path).generation, base + 1);
  EXPECT_EQ(c.Int("SELECT count(*) FROM t"), 2);
  EXPECT_EQ(c.Text("PRAGMA integrity_check"), "ok");
}

INSTANTIATE_TEST_SUITE_P(Modes, FaultTest,
                         ::testing::Values("wal", "delete", "truncate"));

// --- Another process writing the same database -----------------------------

int RunSqliteCli(const std::string& path, const std::string& sql) {
  // The other process runs its own SQLite: not one preloaded for the tests.
  const std::string cmd = "env -u LD_PRELOAD sqlite3 '" + path + "' \"" + sql + "\"";
  return std::system(cmd.c_str());
}

class ForeignTest : public ::testing::TestWithParam<const char*> {};

TEST_P(ForeignTest, ForeignCommitsAreReportedNotCounted) {
  if (std::system("command -v sqlite3 >/dev/null") != 0) {
    GTEST_SKIP() << "the sqlite3 command (Debian package sqlite3) is missing";
  }
  TempDir dir;
  const std::string path = dir.File("shared.db");
  Conn c(path);
  c.Must(std::string("PRAGMA journal_mode=") + GetParam());
  c.Must("CREATE TABLE t(x)");
  c.Must("INSERT INTO t VALUES ('ours')");
  const DatabaseInfo before = Info(path);

  for (int i = 0; i < 3; ++i) {
    ASSERT_EQ(RunSqliteCli(path, "PRAGMA busy_timeout=5000; "
                                 "INSERT INTO t VALUES ('theirs')"),
              0);
  }
  EXPECT_EQ(c.Int("SELECT count(*) FROM t"), 4);  // a read sees them
  const DatabaseInfo seen = Info(path);
  EXPECT_EQ(seen.generation, before.generation);
  EXPECT_GE(seen.foreign_commits, before.foreign_commits + 1);
  EXPECT_NE(seen.position, before.position);

  c.Must("INSERT INTO t VALUES ('ours again')");
  const DatabaseInfo after = Info(path);
  EXPECT_EQ(after.generation, before.generation + 1);
  bool lost = true;
  auto events = Find(path)->EventsAfter(0, 1000, &lost);
  ASSERT_FALSE(events.empty());
  EXPECT_FALSE(events.back().foreign);
  EXPECT_EQ(events.back().generation, after.generation);
  bool any_foreign = false;
  for (const CommitEvent& e : events) any_foreign |= e.foreign;
  EXPECT_TRUE(any_foreign);
}

INSTANTIATE_TEST_SUITE_P(Modes, ForeignTest,
                         ::testing::Values("wal", "delete"));

}  // namespace
}  // namespace quiesce::testing
