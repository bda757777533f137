#include "database.h"

#include <sqlite3.h>

#include <algorithm>
#include <chrono>

#include "config.h"
#include "context.h"
#include "shim_file.h"
#include "wal_format.h"

namespace quiesce {
namespace {

int64_t NowUs() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

Position WalPosition(const wal::IndexHeader& h) {
  Position p;
  p.wal = true;
  p.salt1 = h.salt1;
  p.salt2 = h.salt2;
  p.mx_frame = h.mx_frame;
  return p;
}

Position RollbackPosition(uint32_t change_counter) {
  Position p;
  p.change_counter = change_counter;
  return p;
}

}  // namespace

const char* JournalModeName(JournalMode mode) {
  switch (mode) {
    case JournalMode::kUnknown: return "unknown";
    case JournalMode::kRollback: return "rollback";
    case JournalMode::kDelete: return "delete";
    case JournalMode::kTruncate: return "truncate";
    case JournalMode::kPersist: return "persist";
    case JournalMode::kWal: return "wal";
  }
  return "unknown";
}

const char* LockingModeName(LockingMode mode) {
  return mode == LockingMode::kExclusive ? "exclusive" : "normal";
}

Database::Database(Context* context, uint64_t id, std::string path,
                   FileId file_id, std::string vfs_name,
                   sqlite3_vfs* base_vfs)
    : context_(context),
      id_(id),
      path_(std::move(path)),
      file_id_(file_id),
      vfs_name_(std::move(vfs_name)),
      base_vfs_(base_vfs),
      max_stall_(std::chrono::milliseconds(context->config().max_stall_ms)),
      gate_(&mu, std::chrono::milliseconds(
                     EffectiveLeaseMs(context->config()))) {}

DatabaseInfo Database::Info() {
  DatabaseInfo info;
  info.id = id_;
  info.path = path_;
  {
    MutexLock lock(&mu);
    info.journal_mode = journal_mode_;
    info.locking_mode = locking_mode_;
    info.generation = generation_;
    info.position = position_;
    info.last_commit_us = last_commit_us_;
    info.page_size = page_size_;
    info.db_pages = db_pages_;
    for (const ShimFile* f : handles_) {
      f->LockedBy(*this);
      if (f->own) continue;
      info.handles.push_back(
          {f->handle_id, f->lock_level, f->shm_shared, f->shm_exclusive});
    }
    gate_.HeldAs(mu);
    info.gate_closed = !gate_.open();
    info.gate = gate_.stats();
  }
  info.transactions = counters_.transactions.load(std::memory_order_relaxed);
  info.frames = counters_.frames.load(std::memory_order_relaxed);
  info.bytes_written = counters_.bytes_written.load(std::memory_order_relaxed);
  info.syncs = counters_.syncs.load(std::memory_order_relaxed);
  info.checkpoints = counters_.checkpoints.load(std::memory_order_relaxed);
  info.foreign_commits =
      counters_.foreign_commits.load(std::memory_order_relaxed);
  return info;
}

std::vector<CommitEvent> Database::EventsAfter(uint64_t after, size_t max,
                                               bool* lost) {
  MutexLock lock(&mu);
  const uint64_t oldest =
      next_seq_ > kEventCapacity ? next_seq_ - kEventCapacity : 1;
  *lost = after + 1 < oldest;
  std::vector<CommitEvent> out;
  for (uint64_t seq = std::max(after + 1, oldest);
       seq < next_seq_ && out.size() < max; ++seq) {
    out.push_back(events_[seq % kEventCapacity]);
  }
  return out;
}

uint64_t Database::last_event_seq() {
  MutexLock lock(&mu);
  return next_seq_ - 1;
}

bool Database::PinWalPoint(const ShimFile* own, PinnedPoint* out) {
  MutexLock lock(&mu);
  for (const ShimFile* f : handles_) {
    f->LockedBy(*this);
    if (!f->own && (f->shm_exclusive & (1u << wal::kWriteLock))) return false;
  }
  wal::IndexHeader h;
  if (own->shm0 == nullptr || !wal::ReadIndexHeader(own->shm0, &h)) {
    return false;
  }
  const Position p = WalPosition(h);
  if (!position_valid_ || !position_.wal) {
    position_ = p;
    position_valid_ = true;
  } else if (p != position_) {
    if (h.mx_frame != 0) {
      RecordForeign(p, h.n_page);
    } else {
      position_ = p;
    }
  }
  out->generation = generation_;
  out->position = p;
  out->db_pages = h.n_page;
  out->page_size = h.page_size;
  out->n_backfill = h.n_backfill;
  return true;
}

CommittedState Database::Committed() {
  MutexLock lock(&mu);
  CommittedState out;
  out.wal = journal_mode_ == JournalMode::kWal;
  out.known = position_valid_ && position_.wal == out.wal;
  out.commit_in_flight = pending_commit_frame_ != 0;
  out.generation = generation_;
  out.position = position_;
  return out;
}

PinnedPoint Database::PinRollbackPoint(uint32_t change_counter,
                                       uint32_t db_pages, uint32_t page_size) {
  MutexLock lock(&mu);
  const Position p = RollbackPosition(change_counter);
  if (position_valid_ && !position_.wal && p != position_ &&
      locking_mode_ == LockingMode::kNormal) {
    RecordForeign(p, db_pages);
  }
  position_ = p;
  position_valid_ = true;
  PinnedPoint point;
  point.generation = generation_;
  point.position = p;
  point.db_pages = db_pages;
  point.page_size = page_size;
  return point;
}

void Database::AddHandle(ShimFile* file) {
  MutexLock lock(&mu);
  handles_.push_back(file);
}

void Database::RemoveHandle(ShimFile* file) {
  MutexLock lock(&mu);
  handles_.erase(std::remove(handles_.begin(), handles_.end(), file),
                 handles_.end());
}

uint8_t Database::SharedShmLocks(const ShimFile* file) {
  MutexLock lock(&mu);
  file->LockedBy(*this);
  return file->shm_shared;
}

void Database::Fence() { MutexLock lock(&mu); }

bool Database::LocalWriterActive() {
  for (const ShimFile* f : handles_) {
    f->LockedBy(*this);
    if ((f->shm_exclusive & (1u << wal::kWriteLock)) ||
        f->lock_level >= SQLITE_LOCK_RESERVED) {
      return true;
    }
  }
  return false;
}

void Database::OnWalWriteLocked(ShimFile* file) {
  file->LockedBy(*this);
  journal_mode_ = JournalMode::kWal;
  file->write_hdr_valid = false;
  wal::IndexHeader h;
  if (file->shm0 == nullptr || !wal::ReadIndexHeader(file->shm0, &h)) return;
  file->write_hdr = h;
  file->write_hdr_valid = true;
  const Position p = WalPosition(h);
  if (!position_valid_ || !position_.wal) {
    // First sight of this database in WAL mode: a baseline, not an event.
    position_ = p;
    position_valid_ = true;
    db_pages_ = h.n_page;
    page_size_ = h.page_size;
  } else if (p != position_ && h.mx_frame != 0) {
    RecordForeign(p, h.n_page);
  } else {
    position_ = p;
  }
}

void Database::OnWalWriteUnlocking(ShimFile* file) {
  file->LockedBy(*this);
  pending_commit_frame_ = 0;
  wal::IndexHeader h;
  if (file->shm0 == nullptr || !wal::ReadIndexHeader(file->shm0, &h)) return;
  const Position p = WalPosition(h);
  page_size_ = h.page_size;
  if (file->recovering || !file->write_hdr_valid) {
    // Recovery rebuilt the wal-index from a WAL this process did not write.
    if (position_valid_ && position_.wal && p != position_ && h.mx_frame) {
      RecordForeign(p, h.n_page);
    } else {
      position_ = p;
      position_valid_ = true;
      db_pages_ = h.n_page;
    }
    return;
  }
  const Position before = WalPosition(file->write_hdr);
  if (p == before) return;  // empty, rolled back, or a checkpoint
  if (h.mx_frame == 0) {
    // A TRUNCATE checkpoint, or a WAL restart whose transaction rolled
    // back: the content did not change.
    position_ = p;
    return;
  }
  const bool same_log =
      p.salt1 == before.salt1 && p.salt2 == before.salt2;
  RecordCommit(p, h.n_page,
               same_log ? h.mx_frame - before.mx_frame : h.mx_frame);
}

void Database::OnWalReadLocked(ShimFile* file) {
  journal_mode_ = JournalMode::kWal;
  if (file->shm0 == nullptr) return;
  // Every read transaction passes here: skip the header when no commit
  // happened since the last look (iChange is bumped by every commit).
  const uint32_t change = wal::ReadChangeCounter(file->shm0);
  if (position_valid_ && position_.wal && change == last_change_seen_) return;
  if (LocalWriterActive()) return;
  wal::IndexHeader h;
  if (!wal::ReadIndexHeader(file->shm0, &h)) return;
  last_change_seen_ = h.change;
  const Position p = WalPosition(h);
  if (!position_valid_ || !position_.wal) {
    position_ = p;
    position_valid_ = true;
    db_pages_ = h.n_page;
    page_size_ = h.page_size;
  } else if (p != position_) {
    if (h.mx_frame == 0) {
      position_ = p;  // another process checkpointed and truncated
    } else {
      RecordForeign(p, h.n_page);
    }
  }
}

void Database::OnRollbackHeaderSeen(uint32_t change_counter) {
  MutexLock lock(&mu);
  if (journal_mode_ == JournalMode::kWal || LocalWriterActive()) return;
  const Position p = RollbackPosition(change_counter);
  if (!position_valid_ || position_.wal) {
    position_ = p;
    position_valid_ = true;
  } else if (p != position_) {
    RecordForeign(p, db_pages_);
  }
}

void Database::OnCommitPhaseTwo(ShimFile* file) {
  MutexLock lock(&mu);
  const bool page1_written = file->page1_written;
  file->page1_written = false;
  if (journal_mode_ == JournalMode::kWal) {
    // With a wal-index the commit was decided at the WRITE unlock. Without
    // one (exclusive locking mode) this is the commit point, and the commit
    // frame written since the last boundary says where it ended.
    if (pending_commit_frame_ == 0 ||
        (file->shm0 != nullptr && locking_mode_ != LockingMode::kExclusive)) {
      return;
    }
    if (file->shm0 == nullptr) SetLockingModeLocked(LockingMode::kExclusive);
    Position p;
    p.wal = true;
    p.salt1 = pending_salt1_;
    p.salt2 = pending_salt2_;
    p.mx_frame = pending_commit_frame_;
    const bool same_log = position_valid_ && position_.wal &&
                          position_.salt1 == p.salt1 &&
                          position_.salt2 == p.salt2 &&
                          position_.mx_frame < p.mx_frame;
    pending_commit_frame_ = 0;
    RecordCommit(p, pending_commit_pages_,
                 same_log ? p.mx_frame - position_.mx_frame : p.mx_frame);
    return;
  }
  // Rollback journal. In normal locking mode every commit that changed the
  // database rewrote page 1 with the change counter incremented by one (what
  // data_version reports); a rollback restores it and sends no
  // COMMIT_PHASETWO; an empty commit writes nothing. In exclusive locking
  // mode SQLite increments the counter only once, so a commit is a
  // COMMIT_PHASETWO right after a journal that ended with the database
  // written.
  // Exclusive locking mode without a journal file (MEMORY, OFF): no journal
  // ends, and the transaction changed the database if it wrote the file.
  const bool ended_changed =
      ended_txn_changed_ ||
      (locking_mode_ == LockingMode::kExclusive && !journal_ended_ &&
       db_written_.exchange(false, std::memory_order_relaxed));
  ended_txn_changed_ = false;
  // A transaction that wrote the database file (the exclusive write gate's
  // drain waits for it) has committed: the file is whole.
  if (excl_db_dirty_) {
    excl_db_dirty_ = false;
    gate_.Wake();
  }
  const uint32_t counter = file->page1_counter;
  const bool known = position_valid_ && !position_.wal;
  const bool counter_moved =
      page1_written && (!known || counter != position_.change_counter);
  if (!counter_moved && !ended_changed) return;
  if (journal_mode_ == JournalMode::kUnknown) {
    journal_mode_ = JournalMode::kRollback;
  }
  if (counter_moved && known && counter != position_.change_counter + 1 &&
      locking_mode_ == LockingMode::kNormal) {
    // Commits by another process that no read of ours noticed.
    RecordForeign(RollbackPosition(counter - 1), db_pages_);
  }
  RecordCommit(RollbackPosition(counter_moved ? counter
                                              : position_.change_counter),
               page1_written ? file->page1_pages : db_pages_, 0);
}

void Database::OnJournalHeaderRead() {
  MutexLock lock(&mu);
  journal_played_back_ = true;
}

void Database::OnJournalWritten() {
  MutexLock lock(&mu);
  journal_played_back_ = false;
  if (journal_ended_) {  // the first write of a new transaction's journal
    journal_ended_ = false;
    ended_txn_changed_ = false;
  }
}

void Database::OnMainUnlocked() {
  journal_ended_ = false;
  ended_txn_changed_ = false;
  db_written_.store(false, std::memory_order_relaxed);
}

void Database::OnJournalFinalized(JournalMode how) {
  MutexLock lock(&mu);
  if (journal_mode_ != JournalMode::kWal) journal_mode_ = how;
  journal_ended_ = true;
  ended_txn_changed_ = db_written_.exchange(false, std::memory_order_relaxed);
  // Rolled back: the database file is whole again. (A commit may still
  // truncate it; it is whole at COMMIT_PHASETWO.)
  if (excl_db_dirty_ && journal_played_back_) {
    excl_db_dirty_ = false;
    gate_.Wake();
  }
}

void Database::OnWalFileOpened() {
  MutexLock lock(&mu);
  journal_mode_ = JournalMode::kWal;
}

void Database::OnJournalFileOpened() {
  MutexLock lock(&mu);
  // WAL mode never opens a rollback journal: a switch away from WAL (or the
  // commit that switches to it) is running.
  journal_mode_ = JournalMode::kRollback;
}

void Database::OnFileFormatSeen(uint8_t write_version) {
  MutexLock lock(&mu);
  if (write_version == 2) {
    journal_mode_ = JournalMode::kWal;
  } else if (write_version == 1 && journal_mode_ == JournalMode::kWal) {
    journal_mode_ = JournalMode::kRollback;  // switched away from WAL
  }
}

void Database::SetLockingMode(LockingMode mode) {
  MutexLock lock(&mu);
  SetLockingModeLocked(mode);
}

void Database::SetLockingModeLocked(LockingMode mode) {
  locking_mode_ = mode;
  exclusive_writes_.store(mode == LockingMode::kExclusive,
                          std::memory_order_relaxed);
}

void Database::SetPageSize(uint32_t page_size) {
  MutexLock lock(&mu);
  page_size_ = page_size;
}

void Database::OnWalFrameHeaderWritten(uint32_t frame, uint32_t commit_pages,
                                       uint32_t salt1, uint32_t salt2) {
  MutexLock lock(&mu);
  if (pending_commit_frame_ != 0 && pending_salt1_ == salt1 &&
      pending_salt2_ == salt2 && frame < pending_commit_frame_) {
    return;
  }
  pending_commit_frame_ = frame;
  pending_commit_pages_ = commit_pages;
  pending_salt1_ = salt1;
  pending_salt2_ = salt2;
}

void Database::RecordCommit(const Position& pos, uint32_t db_pages,
                            uint32_t frames) {
  ++generation_;
  position_ = pos;
  position_valid_ = true;
  last_commit_us_ = NowUs();
  db_pages_ = db_pages;
  counters_.transactions.fetch_add(1, std::memory_order_relaxed);
  counters_.frames.fetch_add(frames, std::memory_order_relaxed);
  CommitEvent e;
  e.generation = generation_;
  e.position = pos;
  e.time_us = last_commit_us_;
  e.db_pages = db_pages;
  e.frames = frames;
  PushEvent(e);
}

void Database::RecordForeign(const Position& pos, uint32_t db_pages) {
  position_ = pos;
  position_valid_ = true;
  db_pages_ = db_pages;
  counters_.foreign_commits.fetch_add(1, std::memory_order_relaxed);
  CommitEvent e;
  e.generation = generation_;
  e.foreign = true;
  e.position = pos;
  e.time_us = NowUs();
  e.db_pages = db_pages;
  PushEvent(e);
}

void Database::PushEvent(CommitEvent event) {
  event.seq = next_seq_++;
  events_[event.seq % kEventCapacity] = event;
  context_->NotifyCommit(*this);
}

}  // namespace quiesce
