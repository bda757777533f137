// Fuzzes the shim as a host uses it: a deterministic, single-threaded
// interleaving of SQL over three connections through the shim and one
// "foreign" connection that bypasses it (plain "unix"), with snapshots,
// injections, checkpoints, reopens and faults from a fault-injecting base
// VFS (fault_vfs.h) under the shim. Every input replays exactly.
//
// Invariants, checked after every step (a violation aborts with a message):
//   - the generation never goes back, and moves by exactly the commits the
//     driver made through the shim (its connections and injections) in
//     steps where no fault fired;
//   - meta.commits, bumped by every committed write transaction of anyone,
//     equals the driver's count, read back through the shim;
//   - every snapshot opens, passes integrity_check and holds exactly the
//     committed state (the commit count and a digest of the data);
//   - an injection applies all or nothing, and fails only when a fault
//     fired or a connection of the driver holds a transaction open (the
//     drain times out, naming the handle);
//   - no SQLITE_BUSY on a shim connection while no other connection of the
//     driver has a transaction open (quiesce must never cause one);
//   - once every connection is idle, no handle keeps a wal-index lock or
//     read mark, nor (rollback mode) a file lock; the gate is open;
//   - once all connections close, the shim forgets the database.
//
// Single-threaded means quiesce's gate must never hold back a connection
// of the driver: a snapshot or injection runs to completion inside one
// step, while the driver's connections are between statements.
//
// The foreign connection is in the same process, so SQLite's unix VFS
// shares its POSIX locks and wal-index with the shim's connections (it
// arbitrates between them in-process): it writes the same file without the
// shim seeing the commit, which is what the shim's foreign-commit path is
// for, but it is not a second process.
//
// Faults: armed by a step for the next step only. Read, write, sync and
// truncate errors and a full disk hit any connection; short reads are armed
// only for snapshot steps (only quiesce's own connection does I/O then),
// because SQLite itself trusts SQLITE_IOERR_SHORT_READ to mean the end of
// the file. A step where a fault fired may leave things uncertain (did the
// commit land?): the driver then re-reads the truth instead of asserting it.
#include <fcntl.h>
#include <sqlite3.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>

#include "context.h"
#include "fault_vfs.h"
#include "fuzz_input.h"
#include "inject.h"
#include "quiesce/quiesce.h"
#include "snapshot.h"

namespace quiesce::fuzz {
namespace {

using Clock = std::chrono::steady_clock;
constexpr const char* kShimName = "quiesce-fuzz";

[[noreturn]] void Finding(const std::string& what) {
  std::fprintf(stderr, "vfs_fuzz finding: %s\n", what.c_str());
  std::abort();
}

void Require(bool ok, const std::string& what) {
  if (!ok) Finding(what);
}

void Setup() {
  static bool done = false;
  if (done) return;
  done = true;
  Require(RegisterFaultVfs() == SQLITE_OK, "registering the fault VFS");
  quiesce_config config{};
  config.size = sizeof(config);
  config.base_vfs = kFaultVfsName;
  config.vfs_name = kShimName;
  config.max_stall_ms = 5000;
  Require(quiesce_register(&config) == SQLITE_OK, "registering the shim");
}

std::string WorkDir() {
  if (const char* dir = std::getenv("QUIESCE_FUZZ_DIR")) return dir;
  // Syncs are cheap on tmpfs; the fuzzer does many.
  if (std::filesystem::is_directory("/dev/shm")) return "/dev/shm";
  return std::filesystem::temp_directory_path().string();
}

// The committed state as a digest: the commit count and the data.
struct State {
  int64_t commits = -1;
  std::string digest;
  friend bool operator==(const State&, const State&) = default;
};

int ReadState(sqlite3* db, State* out) {
  sqlite3_stmt* stmt = nullptr;
  int rc = sqlite3_prepare_v2(
      db,
      "SELECT (SELECT commits FROM meta WHERE k = 1), count(*) || '/' || "
      "total(id) || '/' || total(length(v)) FROM t",
      -1, &stmt, nullptr);
  if (rc == SQLITE_OK) {
    rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW) {
      out->commits = sqlite3_column_int64(stmt, 0);
      out->digest = reinterpret_cast<const char*>(sqlite3_column_text(stmt, 1));
      rc = SQLITE_OK;
    }
  }
  const int frc = sqlite3_finalize(stmt);
  return rc != SQLITE_OK ? rc : frc;
}

struct Connection {
  sqlite3* db = nullptr;
  bool shim = true;
  bool dirty = false;          // wrote inside an explicit transaction
  bool bumped = false;         // its meta.commits update is done
  int64_t begun_at_commit = 0; // the commit count when its transaction began
  bool in_txn() const { return db && !sqlite3_get_autocommit(db); }
};

class Driver {
 public:
  Driver(const std::string& path, FuzzInput& in) : path_(path), in_(in) {}
  ~Driver() { Teardown(); }
  Driver(const Driver&) = delete;
  Driver& operator=(const Driver&) = delete;

  void Run();

 private:
  static constexpr int kShimConns = 3;
  static constexpr int kForeign = kShimConns;  // the index of "unix"

  void Open(int c);
  void Create();
  void Teardown();
  int Exec(int c, const std::string& sql);
  std::string ErrorOf(int c) const { return sqlite3_errmsg(conns_[c].db); }
  bool AnyTxn() const;
  bool OthersInTxn(int c) const;
  void EndAll();
  void Committed(int c);
  std::shared_ptr<Database> Db() const;

  void Step();
  void Write(int c);
  void Begin(int c);
  void Commit(int c);
  void Checkpoint(int c);
  void Reopen(int c);
  void Snapshot();
  void InjectStep();
  void ArmFault();
  void Check();

  const std::string path_;
  FuzzInput& in_;
  std::string journal_mode_;
  std::string sync_;  // the PRAGMA synchronous every connection runs
  std::array<Connection, kShimConns + 1> conns_;
  sqlite3* checker_ = nullptr;  // a shim connection that only reads

  int64_t commits_ = 0;          // committed write transactions, anyone's
  uint64_t expected_gen_ = 0;    // the generation the shim must report
  uint64_t last_gen_ = 0;
  uint32_t shim_commits_in_step_ = 0;
  bool fault_pending_ = false;   // a fault for the step that follows
  Fault pending_fault_ = Fault::kNone;
  uint32_t pending_after_ = 0;
  bool pending_persistent_ = false;
  bool step_armed_ = false;      // this step runs with a fault armed
  bool uncertain_ = false;       // a fault fired: re-read the truth
  int step_ = 0;
  // QUIESCE_FUZZ_TRACE=1: print every step, to read a finding's history.
  const bool trace_ = std::getenv("QUIESCE_FUZZ_TRACE") != nullptr;
};

std::shared_ptr<Database> Driver::Db() const {
  auto db = Context::Get()->FindByPath(path_);
  Require(db != nullptr, "the shim lost track of the open database");
  return db;
}

void Driver::Open(int c) {
  Connection& conn = conns_[c];
  conn = Connection{};
  conn.shim = c != kForeign;
  const auto open = [&] {
    return sqlite3_open_v2(path_.c_str(), &conn.db,
                           SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE,
                           conn.shim ? kShimName : "unix");
  };
  const uint32_t fired = Fired();
  int rc = open();
  if (rc != SQLITE_OK && Fired() != fired) {
    // The armed fault hit the open itself: the step is over for it.
    sqlite3_close(conn.db);
    Disarm();
    rc = open();
  }
  Require(rc == SQLITE_OK, "open: " + std::string(sqlite3_errstr(rc)));
  sqlite3_extended_result_codes(conn.db, 1);
  // A small cache spills inside transactions: EXCLUSIVE in rollback mode,
  // uncommitted WAL frames.
  sqlite3_exec(conn.db, "PRAGMA cache_size=8", nullptr, nullptr, nullptr);
}

void Driver::Create() {
  static const char* const kModes[] = {"wal", "delete", "truncate",
                                       "persist"};
  journal_mode_ = kModes[in_.Below(4)];
  const bool full_sync = in_.Bit();
  for (const char* suffix : {"", "-wal", "-shm", "-journal"}) {
    std::filesystem::remove(path_ + suffix);
  }
  for (int c = 0; c <= kForeign; ++c) Open(c);
  Require(Exec(0, "PRAGMA page_size=512; PRAGMA journal_mode=" +
                      journal_mode_ +
                      "; CREATE TABLE meta(k INTEGER PRIMARY KEY, commits "
                      "INTEGER NOT NULL); INSERT INTO meta VALUES (1, 0); "
                      "CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB)") ==
              SQLITE_OK,
          "creating the schema: " + ErrorOf(0));
  sync_ = std::string("PRAGMA synchronous=") + (full_sync ? "FULL" : "NORMAL");
  for (int c = 0; c <= kForeign; ++c) Exec(c, sync_);
  // Read-write, so that it can roll back a hot journal a fault left.
  Require(sqlite3_open_v2(path_.c_str(), &checker_, SQLITE_OPEN_READWRITE,
                          kShimName) == SQLITE_OK,
          "opening the checker");
  expected_gen_ = last_gen_ = Db()->Info().generation;
}

void Driver::Teardown() {
  Disarm();
  for (Connection& conn : conns_) {
    if (conn.db) Require(sqlite3_close(conn.db) == SQLITE_OK, "close");
    conn.db = nullptr;
  }
  if (checker_) Require(sqlite3_close(checker_) == SQLITE_OK, "close");
  checker_ = nullptr;
  Require(Context::Get()->FindByPath(path_) == nullptr,
          "the shim still tracks a database nobody has open");
  for (const char* suffix : {"", "-wal", "-shm", "-journal"}) {
    std::filesystem::remove(path_ + suffix);
  }
}

bool Driver::AnyTxn() const {
  for (const Connection& conn : conns_) {
    if (conn.in_txn()) return true;
  }
  return false;
}

bool Driver::OthersInTxn(int c) const {
  for (int o = 0; o <= kForeign; ++o) {
    if (o != c && conns_[o].in_txn()) return true;
  }
  return false;
}

// Runs SQL on connection c and applies the no-BUSY rule to the result.
int Exec(sqlite3* db, const std::string& sql) {
  return sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr);
}

int Driver::Exec(int c, const std::string& sql) {
  Connection& conn = conns_[c];
  const bool was_in_txn = conn.in_txn();
  const uint32_t fired = Fired();
  const int rc = fuzz::Exec(conn.db, sql);
  if (trace_) std::fprintf(stderr, "  conn %d: %s -> %d\n", c, sql.c_str(), rc);
  if ((rc & 0xff) == SQLITE_BUSY && conn.shim && Fired() == fired &&
      !uncertain_ && !OthersInTxn(c) &&
      // A transaction that read before someone else committed cannot
      // write: SQLite's rule, not quiesce's.
      !(was_in_txn && conn.begun_at_commit != commits_)) {
    Finding("step " + std::to_string(step_) + ": SQLITE_BUSY (" +
            std::to_string(rc) + ") on a shim connection while no other "
            "connection holds a transaction: " + sql + ": " + ErrorOf(c));
  }
  if (!conn.in_txn()) {  // ended, or rolled back by SQLite
    conn.dirty = false;
    conn.bumped = false;
  }
  return rc;
}

void Driver::Committed(int c) {
  ++commits_;
  if (conns_[c].shim) {
    ++expected_gen_;
    ++shim_commits_in_step_;
  }
}

// Ends every open transaction: commits what wrote, rolls back the rest.
void Driver::EndAll() {
  for (int c = 0; c <= kForeign; ++c) {
    if (!conns_[c].in_txn()) continue;
    if (conns_[c].dirty) Commit(c);
    if (conns_[c].in_txn()) Exec(c, "ROLLBACK");
  }
}

void Driver::Write(int c) {
  const uint32_t kind = in_.Below(4);
  const uint32_t size = 1 + in_.Byte() * 16u;
  const uint32_t k = in_.Below(7);
  std::string sql;
  switch (kind) {
    case 0:
      sql = "INSERT INTO t(v) VALUES (zeroblob(" + std::to_string(size) + "))";
      break;
    case 1:
      sql = "UPDATE t SET v = zeroblob(" + std::to_string(size) +
            ") WHERE id % 7 = " + std::to_string(k);
      break;
    case 2:
      sql = "DELETE FROM t WHERE id % 5 = " + std::to_string(k % 5);
      break;
    default:
      sql = "INSERT INTO t(v) SELECT v FROM t ORDER BY id LIMIT 20";
      break;
  }
  Connection& conn = conns_[c];
  if (conn.in_txn()) {
    if (Exec(c, sql) == SQLITE_OK) conn.dirty = true;
    return;
  }
  // One write transaction: the statement and the commit count, or nothing.
  if (Exec(c, "BEGIN") != SQLITE_OK) return;
  conn.begun_at_commit = commits_;
  if (Exec(c, sql) == SQLITE_OK) {
    conn.dirty = true;
    Commit(c);
  }
  if (conn.in_txn()) Exec(c, "ROLLBACK");
}

void Driver::Begin(int c) {
  if (conns_[c].in_txn()) return;
  const bool immediate = in_.Bit();
  if (Exec(c, immediate ? "BEGIN IMMEDIATE" : "BEGIN") != SQLITE_OK) return;
  conns_[c].begun_at_commit = commits_;
  if (in_.Bit()) Exec(c, "SELECT count(*) FROM t");  // a read transaction
}

void Driver::Commit(int c) {
  Connection& conn = conns_[c];
  if (!conn.in_txn()) return;
  const bool wrote = conn.dirty;
  // Once per transaction: a COMMIT that got SQLITE_BUSY leaves it open.
  if (wrote && !conn.bumped) {
    if (Exec(c, "UPDATE meta SET commits = commits + 1 WHERE k = 1") !=
        SQLITE_OK) {
      return;
    }
    conn.bumped = conn.in_txn();
  }
  if (Exec(c, "COMMIT") == SQLITE_OK && wrote) Committed(c);
}

void Driver::Checkpoint(int c) {
  static const char* const kModes[] = {"PASSIVE", "FULL", "RESTART",
                                       "TRUNCATE"};
  Exec(c, std::string("PRAGMA wal_checkpoint(") + kModes[in_.Below(4)] + ")");
}

void Driver::Reopen(int c) {
  if (conns_[c].in_txn()) {
    Commit(c);
    if (conns_[c].in_txn()) Exec(c, "ROLLBACK");
  }
  Require(sqlite3_close(conns_[c].db) == SQLITE_OK, "close: " + ErrorOf(c));
  Open(c);
  Exec(c, sync_);
}

void Driver::Snapshot() {
  if (in_.Bit()) EndAll();
  if (!step_armed_ && in_.Below(4) == 0) {
    Arm(in_.Bit() ? Fault::kShortRead : Fault::kReadError, in_.Below(16),
        false);
  }
  const uint32_t fired = Fired();
  const bool busy = AnyTxn();
  // A file, not a memfd: SQLite resolves /proc/self/fd/N to its target.
  const std::string image_path = path_ + "-snapshot";
  const int fd = open(image_path.c_str(),
                      O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  Require(fd >= 0, "creating the snapshot file");
  struct Unlink {
    const std::string& path;
    ~Unlink() { unlink(path.c_str()); }
  } unlink_image{image_path};
  auto db = Db();
  const uint64_t generation = db->Info().generation;
  SnapshotOptions options;
  // A transaction of the driver's own may hold the drain: fail fast.
  options.deadline =
      Clock::now() + (busy ? std::chrono::milliseconds(30)
                           : std::chrono::milliseconds(10000));
  auto r = WriteSnapshot(*db, fd, options);
  const bool faulted = Fired() != fired;
  Disarm();
  if (!r.ok()) {
    const std::string& m = r.error().message;
    Require(faulted || busy,
            "step " + std::to_string(step_) +
                ": a snapshot failed with every connection idle: " + m);
    if (r.error().code == ErrorCode::kTimeout && !faulted &&
        m.find("host") != std::string::npos) {
      Require(m.find("handle") != std::string::npos,
              "a drain timeout that does not name the handle: " + m);
    }
    close(fd);
    return;
  }
  Require(r.value().point.generation == generation,
          "the snapshot's generation is not the current one");
  sqlite3* image = nullptr;
  Require(sqlite3_open_v2(image_path.c_str(), &image, SQLITE_OPEN_READONLY,
                          "unix") == SQLITE_OK,
          "opening a snapshot image");
  sqlite3_stmt* stmt = nullptr;
  std::string integrity;
  if (sqlite3_prepare_v2(image, "PRAGMA integrity_check", -1, &stmt,
                         nullptr) == SQLITE_OK) {
    while (sqlite3_step(stmt) == SQLITE_ROW) {
      if (!integrity.empty()) integrity += "; ";
      integrity += reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0));
    }
  }
  sqlite3_finalize(stmt);
  Require(integrity == "ok", "step " + std::to_string(step_) +
                                 ": a snapshot fails integrity_check: " +
                                 integrity + (faulted ? " (after a fault)" : ""));
  State snap;
  Require(ReadState(image, &snap) == SQLITE_OK, "reading a snapshot");
  sqlite3_close(image);
  close(fd);
  State live;
  const int rc = ReadState(checker_, &live);
  if (!uncertain_) {
    Require(snap.commits == commits_,
            "step " + std::to_string(step_) + ": the snapshot holds " +
                std::to_string(snap.commits) + " commits, not " +
                std::to_string(commits_));
  }
  if (rc == SQLITE_OK) {
    Require(snap == live, "step " + std::to_string(step_) +
                              ": the snapshot differs from the committed "
                              "state: " + snap.digest + " vs " + live.digest);
  }
}

void Driver::InjectStep() {
  if (in_.Bit()) EndAll();
  enum Kind { kCommit, kDryRun, kBadScript, kFailsMidway };
  const auto kind = static_cast<Kind>(in_.Below(4));
  InjectRequest req;
  const std::string bump = "UPDATE meta SET commits = commits + 1 WHERE k = 1";
  switch (kind) {
    case kCommit:
    case kDryRun:
      req.sql = bump + "; INSERT INTO t(v) VALUES (:b)";
      req.blobs["b"] = std::string(1 + in_.Byte() * 8u, 'q');
      req.dry_run = kind == kDryRun;
      break;
    case kBadScript:
      req.sql = bump + "; INSERT INTO no_such_table VALUES (1)";
      break;
    case kFailsMidway:
      req.sql = bump + "; INSERT INTO meta VALUES (1, 0)";  // not unique
      break;
  }
  const uint32_t fired = Fired();
  const bool busy = AnyTxn();
  req.deadline = Clock::now() + (busy ? std::chrono::milliseconds(30)
                                      : std::chrono::milliseconds(10000));
  auto db = Db();
  State before;
  const int before_rc = ReadState(checker_, &before);
  auto r = Inject(*db, req);
  const bool faulted = Fired() != fired;
  Disarm();
  const std::string at = "step " + std::to_string(step_) + ": ";
  Require(!db->Info().gate_closed, at + "the gate stayed closed");
  if (r.ok()) {
    Require(kind == kCommit || kind == kDryRun,
            at + "an injection that must fail succeeded");
    Require(r.value().committed == (kind == kCommit),
            at + "committed does not match the request");
    if (r.value().committed) {
      ++commits_;
      ++expected_gen_;
      ++shim_commits_in_step_;
      Require(r.value().generation == db->Info().generation,
              at + "the injection reports another generation");
    }
    return;
  }
  const Error& e = r.error();
  if (kind == kBadScript || kind == kFailsMidway) {
    Require(faulted || busy || e.code == ErrorCode::kSqlError,
            at + "a failing script failed with code " +
                std::to_string(static_cast<int>(e.code)) +
                ": " + e.message);
  } else {
    Require(faulted || busy, at + "an injection failed with every "
                                  "connection idle: " + e.message);
    if (e.code == ErrorCode::kTimeout && e.message.find("host") !=
                                             std::string::npos) {
      Require(e.message.find("handle") != std::string::npos,
              at + "a drain timeout that does not name the handle: " +
                  e.message);
    }
  }
  // All or nothing: a failed injection changed nothing.
  State after;
  if (!faulted && before_rc == SQLITE_OK &&
      ReadState(checker_, &after) == SQLITE_OK) {
    Require(after == before, at + "a failed injection changed the data");
  }
}

void Driver::ArmFault() {
  static const Fault kFaults[] = {Fault::kReadError, Fault::kWriteError,
                                  Fault::kDiskFull, Fault::kSyncError,
                                  Fault::kTruncateError};
  pending_fault_ = kFaults[in_.Below(5)];
  pending_after_ = in_.Below(32);
  pending_persistent_ = in_.Below(4) == 0;
  fault_pending_ = true;
}

void Driver::Step() {
  // A fault armed by the previous step holds for this one's operation
  // only, never for the checks after it.
  const bool armed = fault_pending_;
  fault_pending_ = false;
  step_armed_ = armed;
  if (armed) Arm(pending_fault_, pending_after_, pending_persistent_);
  const uint32_t fired = Fired();
  shim_commits_in_step_ = 0;
  const uint32_t op = in_.Below(16);
  const int c = static_cast<int>(in_.Below(kForeign + 1));
  if (trace_) std::fprintf(stderr, "step %d: op %u conn %d\n", step_, op, c);
  switch (op) {
    case 0: case 1: case 2: case 3: Write(c); break;
    case 4: case 5: Begin(c); break;
    case 6: Commit(c); break;
    case 7:
      if (conns_[c].in_txn()) Exec(c, "ROLLBACK");
      break;
    case 8: Exec(c, "SELECT count(*), total(length(v)) FROM t"); break;
    case 9: Checkpoint(c); break;
    case 10: Reopen(c); break;
    case 11: case 12: Snapshot(); break;
    case 13: InjectStep(); break;
    default: ArmFault(); break;
  }
  Disarm();
  if (Fired() != fired) uncertain_ = true;
  if (trace_) {
    std::fprintf(stderr, "  faults %u, generation %llu, commits %lld%s\n",
                 Fired() - fired,
                 static_cast<unsigned long long>(Db()->Info().generation),
                 static_cast<long long>(commits_),
                 uncertain_ ? " (uncertain)" : "");
  }
  Check();
}

void Driver::Check() {
  const std::string at = "step " + std::to_string(step_) + ": ";
  auto db = Db();
  DatabaseInfo info = db->Info();
  Require(info.generation >= last_gen_, at + "the generation went back");
  Require(info.generation - last_gen_ <= shim_commits_in_step_ ||
              (uncertain_ && info.generation - last_gen_ <=
                                 shim_commits_in_step_ + 1),
          at + "the generation moved by more than the commits made");
  last_gen_ = info.generation;
  if (uncertain_) expected_gen_ = info.generation;
  Require(info.generation == expected_gen_,
          at + "generation " + std::to_string(info.generation) +
              ", expected " + std::to_string(expected_gen_));
  Require(!info.gate_closed, at + "the gate is closed between steps");
  if (AnyTxn()) return;
  // Everyone is idle: no lock may remain, and the data is what was committed.
  State live;
  const int rc = ReadState(checker_, &live);
  if (rc != SQLITE_OK) {
    Require(uncertain_, at + "the checker cannot read an idle database: " +
                            sqlite3_errstr(rc));
    return;
  }
  info = db->Info();
  const bool wal = journal_mode_ == "wal";
  for (const HandleInfo& h : info.handles) {
    const bool clean = h.shm_shared == 0 && h.shm_exclusive == 0 &&
                       h.lock_level <= (wal ? SQLITE_LOCK_SHARED
                                            : SQLITE_LOCK_NONE);
    Require(clean || uncertain_,
            at + "handle " + std::to_string(h.handle_id) +
                " keeps a lock while every connection is idle (level " +
                std::to_string(h.lock_level) + ", shm shared " +
                std::to_string(h.shm_shared) + ", exclusive " +
                std::to_string(h.shm_exclusive) + ")");
    if (!clean) return;  // stays uncertain until SQLite cleans up
  }
  if (uncertain_) {
    commits_ = live.commits;  // the truth, now that it can be read
    uncertain_ = false;
  }
  Require(live.commits == commits_,
          at + "meta.commits is " + std::to_string(live.commits) +
              ", expected " + std::to_string(commits_));
}

void Driver::Run() {
  Create();
  for (step_ = 1; !in_.empty(); ++step_) Step();
  EndAll();
  Disarm();
  Check();
}

}  // namespace
}  // namespace quiesce::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace quiesce::fuzz;
  Setup();
  const std::string path =
      WorkDir() + "/quiesce-vfs-fuzz-" + std::to_string(getpid()) + ".db";
  FuzzInput in(data, size);
  Driver driver(path, in);
  driver.Run();
  return 0;
}
