// A database's side of its gate (gate.h): which host handles keep a
// closing gate from draining, which host requests a closed gate holds
// back, and when a request waits for a lock quiesce's own connection
// holds. Open, every lock request passes straight to the base VFS.
// Closing, host handles that hold nothing and ask for their first lock
// wait while in-flight transactions drain. Closed, a quiescent point. The
// rules, and why each is needed: DESIGN.md "The gate".
#include <sqlite3.h>

#include <cstdio>
#include <string>

#include "clock.h"
#include "context.h"
#include "database.h"
#include "shim_file.h"
#include "wal_format.h"

namespace quiesce {
namespace {

uint8_t SlotMask(int offset, int n) {
  return static_cast<uint8_t>(((1u << n) - 1u) << offset);
}

constexpr uint8_t kWriteBit = 1u << wal::kWriteLock;
constexpr uint8_t kCkptBit = 1u << wal::kCkptLock;
constexpr uint8_t kReadBits = static_cast<uint8_t>(0xF8);  // READ0..READ4

std::string DescribeLocks(const ShimFile* f) QUIESCE_REQUIRES(f->db->mu) {
  static const char* const kSlots[wal::kNumLocks] = {
      "WRITE", "CKPT", "RECOVER", "READ0", "READ1", "READ2", "READ3", "READ4"};
  std::string out;
  for (int i = 0; i < wal::kNumLocks; ++i) {
    const bool x = f->shm_exclusive & (1u << i);
    const bool s = f->shm_shared & (1u << i);
    if (!x && !s) continue;
    if (!out.empty()) out += "+";
    out += std::string(kSlots[i]) + (x ? " exclusive" : " shared");
  }
  if (out.empty()) {
    static const char* const kLevels[] = {"NONE", "SHARED", "RESERVED",
                                          "PENDING", "EXCLUSIVE"};
    out = kLevels[f->lock_level & 7];
  }
  return out;
}

}  // namespace

bool Database::Idle(const ShimFile* f) const {
  f->LockedBy(*this);
  if (journal_mode_ == JournalMode::kWal) {
    // A WAL connection keeps a SHARED lock on the database file for its
    // whole life: only wal-index locks mark a transaction.
    return f->shm_shared == 0 && f->shm_exclusive == 0;
  }
  return f->lock_level == SQLITE_LOCK_NONE;
}

const ShimFile* Database::DrainBlocker() const {
  gate_.HeldAs(mu);
  const bool wal = journal_mode_ == JournalMode::kWal;
  const Drain drain = gate_.drain();
  for (const ShimFile* f : handles_) {
    f->LockedBy(*this);
    if (f->own || Idle(f)) continue;
    if (wal) {
      const bool writing = f->shm_exclusive & kWriteBit;
      // A passive checkpoint does not conflict with a writer.
      if (drain != Drain::kHold && !writing && (f->shm_exclusive & kCkptBit)) {
        continue;
      }
      // Readers left running across an injection: the client's choice.
      if (gate_.readers_may_proceed() && !writing &&
          (f->shm_exclusive & ~kReadBits) == 0 &&
          (f->shm_shared & ~kReadBits) == 0) {
        continue;
      }
    } else if (drain == Drain::kWriters &&
               f->lock_level < SQLITE_LOCK_RESERVED) {
      continue;  // readers do not change the file
    }
    return f;
  }
  return nullptr;
}

bool Database::GateHoldsBack(const ShimFile* f, bool shm, int offset,
                             int flags, int level) {
  gate_.HeldAs(mu);
  if (gate_.open() || f->own || !Idle(f)) return false;
  // The write gate holds back writes, never a lock: reads go on.
  const Drain drain = gate_.drain();
  if (drain == Drain::kExclusiveWrites) return false;
  if (shm) {
    const bool exclusive = flags & SQLITE_SHM_EXCLUSIVE;
    // An EXCLUSIVE probe for a read mark is followed by the SHARED request
    // that waits; a probe itself never waits.
    if (exclusive && offset >= wal::kReadLock0) return false;
    if (drain != Drain::kHold && offset == wal::kCkptLock) return false;
    if (gate_.readers_may_proceed() && offset >= wal::kReadLock0) return false;
  } else {
    if (journal_mode_ == JournalMode::kWal) return false;
    if (level != SQLITE_LOCK_SHARED) return false;  // only NONE -> SHARED
  }
  // One thread, two connections: a thread that holds a lock through
  // another handle would wait for itself until the drain timed out.
  const std::thread::id me = std::this_thread::get_id();
  for (const ShimFile* other : handles_) {
    other->LockedBy(*this);
    if (other != f && !Idle(other) && other->lock_thread == me) return false;
  }
  return true;
}

void Database::LogStall(const char* request, const char* at) {
  context_->api().log(SQLITE_WARNING,
                      "quiesce: a %s on %s waited max_stall %s and goes ahead",
                      request, path_.c_str(), at);
}

void Database::AdmitShmLock(ShimFile* f, int offset, int /*n*/, int flags,
                            Clock::time_point deadline) {
  if (flags & SQLITE_SHM_UNLOCK) return;
  gate_.HeldAs(mu);
  if (GateHoldsBack(f, /*shm=*/true, offset, flags, 0) &&
      !gate_.Wait([] { return true; }, deadline)) {
    LogStall("lock request", "at a closed gate");
  }
}

void Database::AdmitLock(ShimFile* f, int level, Clock::time_point deadline) {
  gate_.HeldAs(mu);
  if (GateHoldsBack(f, /*shm=*/false, 0, 0, level) &&
      !gate_.Wait([] { return true; }, deadline)) {
    LogStall("lock request", "at a closed gate");
  }
}

// --- the write gate of exclusive locking mode ------------------------------
// SQLite takes no lock between transactions there, so there is nothing to
// hold back at the lock calls; what must not happen during a raw copy is a
// change to the bytes it reads. Writes wait instead, each bounded like any
// wait at the gate. Waiting inside a write is safe here because no other
// connection can need what the writer holds (it holds the database file
// exclusively), and quiesce never waits for the host while the gate is shut.

bool Database::ExclusiveWriteHeldBack(WriteTarget target, int64_t offset) {
  gate_.HeldAs(mu);
  if (gate_.open() || gate_.drain() != Drain::kExclusiveWrites) {
    return false;
  }
  if (target == WriteTarget::kWal) {
    return static_cast<uint64_t>(offset) < wal_guard_;
  }
  // The database file: a rollback transaction that has already written it
  // must finish (the drain waits for it); every other write waits. In WAL
  // mode these are checkpoints, which may stop anywhere: every page they
  // write has a frame in the copied WAL prefix.
  return journal_mode_ == JournalMode::kWal || !excl_db_dirty_;
}

bool Database::ExclusiveWritesBusy() const {
  return writes_in_flight_ > 0 ||
         (journal_mode_ != JournalMode::kWal && excl_db_dirty_);
}

void Database::BeginExclusiveWrite(WriteTarget target, int64_t offset) {
  MutexLock lock(&mu);
  gate_.HeldAs(mu);
  if (ExclusiveWriteHeldBack(target, offset) &&
      !gate_.Wait(
          [&]() QUIESCE_REQUIRES(mu) {
            return ExclusiveWriteHeldBack(target, offset);
          },
          Clock::now() + max_stall_)) {
    LogStall("write", "at a closed write gate");
  }
  ++writes_in_flight_;
}

void Database::EndExclusiveWrite(WriteTarget target, bool written) {
  MutexLock lock(&mu);
  --writes_in_flight_;
  if (written && target == WriteTarget::kMain &&
      journal_mode_ != JournalMode::kWal && !excl_db_dirty_) {
    excl_db_dirty_ = true;
    excl_dirty_since_ = Clock::now();
  }
  gate_.HeldAs(mu);
  if (gate_.closing()) gate_.Wake();
}

void Database::SetWalGuard(uint64_t bytes) {
  MutexLock lock(&mu);
  wal_guard_ = bytes;
  gate_.Wake();
}

template <typename Conflicts>
bool Database::AwaitOwn(Conflicts conflicts, Clock::time_point deadline) {
  gate_.HeldAs(mu);
  switch (gate_.AwaitOwn(conflicts, deadline)) {
    case Gate::OwnWait::kNone:
      return false;
    case Gate::OwnWait::kStalled:
      LogStall("lock request", "for quiesce's own connection");
      return true;
    case Gate::OwnWait::kReleased:
      return true;
  }
  return true;
}

bool Database::AwaitOwnShmRelease(ShimFile* f, int offset, int n, int flags,
                                  Clock::time_point deadline) {
  f->LockedBy(*this);
  if (f->own || (flags & SQLITE_SHM_UNLOCK)) return false;
  const uint8_t mask = SlotMask(offset, n);
  const bool exclusive = flags & SQLITE_SHM_EXCLUSIVE;
  // What a request may wait for. On the read marks, only a checkpoint that
  // must get past every reader: FULL, RESTART and TRUNCATE, which hold CKPT
  // and WRITE when they ask. Everything else there gets BUSY at once, as
  // beside any other reader, and SQLite moves on: a probe to the next mark,
  // a passive or automatic checkpoint to a smaller backfill, a WAL restart
  // to appending, a reader whose mark was being set (for a moment) to a
  // retry. Elsewhere (WRITE, CKPT, RECOVER) a lock quiesce holds: an
  // injection's WRITE, its passive checkpoint's CKPT, held for as long as
  // the operation's own bounded work and never across its client's I/O.
  const bool blocking_checkpoint = exclusive && (mask & kReadBits) &&
                                   (f->shm_exclusive & kCkptBit) &&
                                   (f->shm_exclusive & kWriteBit);
  const uint8_t waits_for =
      blocking_checkpoint ? mask : static_cast<uint8_t>(mask & ~kReadBits);
  const uint8_t shared_mask = exclusive ? waits_for : 0;
  return AwaitOwn(
      [&]() QUIESCE_REQUIRES(mu) {
        for (const ShimFile* g : handles_) {
          g->LockedBy(*this);
          if (g->own && ((g->shm_exclusive & waits_for) ||
                         (g->shm_shared & shared_mask))) {
            return true;
          }
        }
        return false;
      },
      deadline);
}

bool Database::AwaitOwnLockRelease(ShimFile* f, int level,
                                   Clock::time_point deadline) {
  if (f->own || level <= SQLITE_LOCK_SHARED) return false;
  // In WAL mode EXCLUSIVE on the database file is a probe, never a commit:
  // mostly a closing connection's checkpoint, which SQLite skips when
  // another connection is open. Waiting would stall the close for as long
  // as a snapshot copies. (A switch out of WAL mode meanwhile fails as it
  // would beside any other connection.)
  if (journal_mode_ == JournalMode::kWal) return false;
  return AwaitOwn(
      [&]() QUIESCE_REQUIRES(mu) {
        for (const ShimFile* g : handles_) {
          g->LockedBy(*this);
          // RESERVED conflicts with RESERVED and above; PENDING and
          // EXCLUSIVE with any SHARED.
          if (g->own && (level == SQLITE_LOCK_RESERVED
                             ? g->lock_level >= SQLITE_LOCK_RESERVED
                             : g->lock_level >= SQLITE_LOCK_SHARED)) {
            return true;
          }
        }
        return false;
      },
      deadline);
}

Database::Clock::duration Database::HostWaitingFor(bool at_gate) {
  MutexLock lock(&mu);
  gate_.HeldAs(mu);
  return gate_.HostWaitingFor(at_gate);
}

void Database::CountYield() {
  MutexLock lock(&mu);
  gate_.HeldAs(mu);
  gate_.CountYield();
}

void Database::OnLocksChanged(ShimFile* f) {
  f->LockedBy(*this);
  if (Idle(f)) {
    f->lock_thread = std::thread::id();
  } else if (f->lock_thread == std::thread::id()) {
    f->lock_thread = std::this_thread::get_id();
    f->held_since = Clock::now();
  }
  // Only wake sleepers who may care: a drain, or a request waiting for
  // quiesce's own connection. The open-gate path stays a branch.
  gate_.HeldAs(mu);
  gate_.OnLocksChanged(f->own);
}

Result<uint64_t> Database::CloseGate(Drain level, bool readers_may_proceed,
                                     Clock::time_point drain_deadline,
                                     Clock::time_point closed_until) {
  MutexLock lock(&mu);
  gate_.HeldAs(mu);
  if (Result<Ok> begun = gate_.BeginClose(level, readers_may_proceed);
      !begun.ok()) {
    return Error{begun.error().code, begun.error().message + " on " + path_};
  }
  const bool write_gate = level == Drain::kExclusiveWrites;
  wal_guard_ = UINT64_MAX;  // until the copy says which prefix it reads
  return gate_.FinishClose(
      drain_deadline, closed_until,
      [&]() QUIESCE_REQUIRES(mu) {
        return write_gate ? !ExclusiveWritesBusy() : DrainBlocker() == nullptr;
      },
      [&]() QUIESCE_REQUIRES(mu) { return DescribeDrainBlocker(write_gate); });
}

std::string Database::DescribeDrainBlocker(bool write_gate) const {
  char message[256];
  if (!write_gate) {
    const ShimFile* blocker = DrainBlocker();
    if (blocker == nullptr) return "nothing";
    blocker->LockedBy(*this);
    std::snprintf(message, sizeof(message),
                  "handle %llu holds %s since %llu ms",
                  static_cast<unsigned long long>(blocker->handle_id),
                  DescribeLocks(blocker).c_str(),
                  static_cast<unsigned long long>(
                      Micros(Clock::now() - blocker->held_since) / 1000));
  } else if (writes_in_flight_ > 0) {
    std::snprintf(message, sizeof(message),
                  "%d writes to the database files did not return",
                  writes_in_flight_);
  } else {
    std::snprintf(message, sizeof(message),
                  "a write transaction (locking_mode=EXCLUSIVE) has had the "
                  "database file written for %llu ms without committing or "
                  "rolling back",
                  static_cast<unsigned long long>(
                      Micros(Clock::now() - excl_dirty_since_) / 1000));
  }
  return message;
}

bool Database::ReopenGate(uint64_t token) {
  MutexLock lock(&mu);
  gate_.HeldAs(mu);
  return gate_.Reopen(token);
}

}  // namespace quiesce
