#include "snapshot.h"

#include <thread>

#include "exclusive_point.h"
#include "image_stream.h"
#include "own_connection.h"
#include "shim_file.h"
#include "wal_format.h"

namespace quiesce {
namespace {

using Clock = std::chrono::steady_clock;

// Host writers wait for a copy made under the gate: it must end before any
// of them would give up.
SnapshotOptions CappedAtLease(const Database& db, SnapshotOptions opt) {
  const Clock::time_point cap = Clock::now() + db.lease_cap();
  if (opt.deadline > cap) opt.deadline = cap;
  return opt;
}

Result<SnapshotResult> WalSnapshot(Database& db, int out_fd,
                                   const SnapshotOptions& opt) {
  auto opened = OwnConnection::Open(db);
  if (!opened.ok()) return opened.error();
  OwnConnection& own = *opened.value();
  // Pin a point: a read transaction, then the header it guarantees. A
  // local commit between its header write and its WRITE unlock is waited
  // out (a fraction of a millisecond); a READ0 reader (the db file alone is
  // its snapshot) that a later commit overtook starts again.
  for (;;) {
    if (Clock::now() >= opt.deadline) return TimeoutError("pinning a snapshot");
    if (auto r = own.BeginRead(); !r.ok()) {
      if (r.error().code != ErrorCode::kBusy) return r.error();
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
      continue;
    }
    ShimFile* main = own.main_file();
    PinnedPoint point;
    if (!db.PinWalPoint(main, &point)) {
      // Never hold a read mark while waiting: the writer may be a
      // checkpointer that needs it gone.
      own.Rollback();
      std::this_thread::sleep_for(std::chrono::microseconds(200));
      continue;
    }
    const bool read0 = db.SharedShmLocks(main) & (1u << wal::kReadLock0);
    if (read0 && point.n_backfill != point.position.mx_frame) {
      own.Rollback();
      continue;
    }
    if (point.position.mx_frame == 0 || point.page_size == 0) {
      // An empty WAL (opened, nothing committed since): the wal-index knows
      // no size, and the database file alone is the state.
      auto header = ReadDbHeader(main->real());
      if (!header.ok()) {
        own.Rollback();
        return header.error();
      }
      point.page_size = header.value().page_size;
      point.db_pages = header.value().pages;
    }
    sqlite3_file* wal = own.wal_file();
    const uint32_t cut = read0 ? 0 : point.position.mx_frame;
    if (cut != 0 && wal == nullptr) {
      own.Rollback();
      return Error{ErrorCode::kInternal, "the WAL is not open"};
    }
    auto result =
        StreamImage(db, main->real(), wal, point, cut, out_fd,
                    /*holds_gate=*/false, opt);
    own.Rollback();
    return result;
  }
}

Result<SnapshotResult> RollbackSnapshot(Database& db, int out_fd,
                                        const SnapshotOptions& options) {
  const SnapshotOptions opt = CappedAtLease(db, options);
  auto opened = OwnConnection::Open(db);
  if (!opened.ok()) return opened.error();
  OwnConnection& own = *opened.value();
  // Drain writers, take SHARED, reopen at once: from then on a host writer
  // waits only for its EXCLUSIVE, and only as long as the copy.
  for (;;) {
    auto token = db.CloseGate(Drain::kWriters, /*readers_may_proceed=*/true,
                              opt.deadline, opt.deadline);
    if (!token.ok()) return token.error();
    Result<Ok> began = own.BeginRead();
    db.ReopenGate(token.value());
    if (began.ok()) break;
    // Another process holds a write lock: its commit ends soon.
    if (began.error().code != ErrorCode::kBusy ||
        Clock::now() >= opt.deadline) {
      return began.error();
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }

  sqlite3_file* main = own.main_file()->real();
  auto header = ReadDbHeader(main);
  if (!header.ok()) {
    own.Rollback();
    return header.error();
  }
  const PinnedPoint point = db.PinRollbackPoint(
      header.value().change_counter, header.value().pages,
      header.value().page_size);
  auto result = StreamImage(db, main, nullptr, point, 0, out_fd,
                            /*holds_gate=*/false, opt);
  own.Rollback();
  return result;
}

// locking_mode=EXCLUSIVE: no second connection can read the database.
// The write gate closes at a commit boundary, and the files are copied raw
// through quiesce's own base-VFS file objects while the writes that would
// change the copied bytes wait.
Result<SnapshotResult> ExclusiveSnapshot(Database& db, int out_fd,
                                         const SnapshotOptions& options) {
  const SnapshotOptions opt = CappedAtLease(db, options);
  auto reached = ReachExclusivePoint(db, opt.deadline, opt.deadline);
  if (!reached.ok()) return reached.error();
  ExclusivePoint& at = reached.value();
  auto result = StreamImage(db, at.main.get(), at.wal.get(), at.point,
                            at.wal_cut, out_fd, /*holds_gate=*/true, opt);
  if (!db.ReopenGate(at.token) && result.ok()) {
    // Revoked: a host write went ahead while the copy was still reading.
    return TimeoutError("the copy within the host's max_stall");
  }
  return result;
}

}  // namespace

Result<SnapshotResult> WriteSnapshot(Database& db, int out_fd,
                                     const SnapshotOptions& options) {
  const DatabaseInfo info = db.Info();
  if (info.locking_mode == LockingMode::kExclusive) {
    return ExclusiveSnapshot(db, out_fd, options);
  }
  if (info.journal_mode == JournalMode::kWal) {
    return WalSnapshot(db, out_fd, options);
  }
  return RollbackSnapshot(db, out_fd, options);
}

}  // namespace quiesce
