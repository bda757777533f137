// Per-database state shared by every connection to one database file in the
// process: which handles hold which locks, and where the database stands
// (generation, exact position, sizes, counters, recent commit events).
//
// Thread safety: fields marked GUARDED_BY(mu) are read and written under
// mu; counters are relaxed atomics, updated on the I/O path without a lock.
// Lifetime: shared by the handles of the database and by whoever inspects
// it (the control server); it is dropped from the registry when its last
// main-database handle closes, and a reopen gets a new id (the epoch).
#ifndef QUIESCE_VFS_DATABASE_H_
#define QUIESCE_VFS_DATABASE_H_

#include <sys/types.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include "mutex.h"
#include "position.h"

namespace quiesce {

class Context;
struct ShimFile;

struct FileId {
  dev_t dev = 0;
  ino_t ino = 0;
  friend bool operator==(const FileId&, const FileId&) = default;
  friend auto operator<=>(const FileId&, const FileId&) = default;
};

struct Counters {
  std::atomic<uint64_t> transactions{0};  // commits through the shim
  std::atomic<uint64_t> frames{0};        // WAL frames committed
  std::atomic<uint64_t> bytes_written{0}; // db, WAL and journal writes
  std::atomic<uint64_t> syncs{0};
  std::atomic<uint64_t> checkpoints{0};
  std::atomic<uint64_t> foreign_commits{0};  // foreign events reported
};

// One open handle as seen by status and tests.
struct HandleInfo {
  uint64_t handle_id = 0;
  int lock_level = 0;        // SQLITE_LOCK_NONE .. SQLITE_LOCK_EXCLUSIVE
  uint8_t shm_shared = 0;    // bit n: shm slot n held shared
  uint8_t shm_exclusive = 0; // bit n: shm slot n held exclusive
};

// A consistent copy of a database's state.
struct DatabaseInfo {
  uint64_t id = 0;
  std::string path;
  JournalMode journal_mode = JournalMode::kUnknown;
  LockingMode locking_mode = LockingMode::kNormal;
  uint64_t generation = 0;
  Position position;
  int64_t last_commit_us = 0;
  uint32_t page_size = 0;
  uint32_t db_pages = 0;
  uint64_t transactions = 0, frames = 0, bytes_written = 0, syncs = 0,
           checkpoints = 0, foreign_commits = 0;
  std::vector<HandleInfo> handles;
};

class Database {
 public:
  static constexpr size_t kEventCapacity = 4096;

  Database(Context* context, uint64_t id, std::string path, FileId file_id);
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;

  uint64_t id() const { return id_; }
  const std::string& path() const { return path_; }
  FileId file_id() const { return file_id_; }
  Counters& counters() { return counters_; }

  DatabaseInfo Info() QUIESCE_EXCLUDES(mu);

  // Events with seq > after, at most max of them. *lost is set when events
  // after `after` were already overwritten (the reader fell behind).
  std::vector<CommitEvent> EventsAfter(uint64_t after, size_t max, bool* lost)
      QUIESCE_EXCLUDES(mu);
  uint64_t last_event_seq() QUIESCE_EXCLUDES(mu);

  // --- called by the shim's file methods ---------------------------------
  Mutex mu;

  void AddHandle(ShimFile* file) QUIESCE_REQUIRES(mu);
  void RemoveHandle(ShimFile* file) QUIESCE_REQUIRES(mu);

  // WAL with a wal-index: `file` was just granted the WRITE lock.
  void OnWalWriteLocked(ShimFile* file) QUIESCE_REQUIRES(mu);
  // WAL with a wal-index: `file` is about to release the WRITE lock.
  void OnWalWriteUnlocking(ShimFile* file) QUIESCE_REQUIRES(mu);
  // WAL with a wal-index: a read lock was granted; foreign commits show here.
  void OnWalReadLocked(ShimFile* file) QUIESCE_REQUIRES(mu);
  // Rollback journal: page 1 was read with this change counter.
  void OnRollbackHeaderSeen(uint32_t change_counter) QUIESCE_EXCLUDES(mu);
  // COMMIT_PHASETWO on a main-database handle.
  void OnCommitPhaseTwo(ShimFile* file) QUIESCE_EXCLUDES(mu);
  // Rollback journal: the database file was written (by a commit, a spill
  // or a playback); the journal got its first write of a transaction; a
  // main-database handle dropped to SHARED or below (a transaction ended).
  void OnMainWritten() { db_written_.store(true, std::memory_order_relaxed); }
  void OnJournalWritten() QUIESCE_EXCLUDES(mu);
  void OnMainUnlocked() QUIESCE_REQUIRES(mu);
  // The journal ended in this way (tells DELETE / TRUNCATE / PERSIST apart).
  void OnJournalFinalized(JournalMode how) QUIESCE_EXCLUDES(mu);
  // A WAL file of this database was opened; a rollback journal was opened;
  // page 1 was read or written with these file format bytes (2: WAL).
  void OnWalFileOpened() QUIESCE_EXCLUDES(mu);
  void OnJournalFileOpened() QUIESCE_EXCLUDES(mu);
  void OnFileFormatSeen(uint8_t write_version) QUIESCE_EXCLUDES(mu);
  void SetLockingMode(LockingMode mode) QUIESCE_EXCLUDES(mu);
  void SetPageSize(uint32_t page_size) QUIESCE_EXCLUDES(mu);

  // Exclusive-locking WAL (no wal-index calls): a frame header was written.
  void OnWalFrameHeaderWritten(uint32_t frame, uint32_t commit_pages,
                               uint32_t salt1, uint32_t salt2)
      QUIESCE_EXCLUDES(mu);

  // Some handle of this process holds the WAL WRITE lock, or a rollback
  // lock of RESERVED or more: a commit of ours may be under way.
  bool LocalWriterActive() QUIESCE_REQUIRES(mu);

 private:
  void RecordCommit(const Position& pos, uint32_t db_pages, uint32_t frames)
      QUIESCE_REQUIRES(mu);
  void RecordForeign(const Position& pos, uint32_t db_pages)
      QUIESCE_REQUIRES(mu);
  void PushEvent(CommitEvent event) QUIESCE_REQUIRES(mu);

  Context* const context_;
  const uint64_t id_;
  const std::string path_;
  const FileId file_id_;
  Counters counters_;

  std::vector<ShimFile*> handles_ QUIESCE_GUARDED_BY(mu);
  // Rollback journal bookkeeping, for exclusive locking mode where the
  // change counter moves only once: whether the database file was written
  // since the journal last ended, and whether the transaction whose journal
  // just ended had written it (consumed by COMMIT_PHASETWO).
  std::atomic<bool> db_written_{false};
  bool journal_ended_ QUIESCE_GUARDED_BY(mu) = false;
  bool ended_txn_changed_ QUIESCE_GUARDED_BY(mu) = false;
  JournalMode journal_mode_ QUIESCE_GUARDED_BY(mu) = JournalMode::kUnknown;
  LockingMode locking_mode_ QUIESCE_GUARDED_BY(mu) = LockingMode::kNormal;
  uint64_t generation_ QUIESCE_GUARDED_BY(mu) = 0;
  // Where the database stands as far as this process knows; valid_ once a
  // header or commit has been seen.
  Position position_ QUIESCE_GUARDED_BY(mu);
  bool position_valid_ QUIESCE_GUARDED_BY(mu) = false;
  int64_t last_commit_us_ QUIESCE_GUARDED_BY(mu) = 0;
  uint32_t page_size_ QUIESCE_GUARDED_BY(mu) = 0;
  uint32_t db_pages_ QUIESCE_GUARDED_BY(mu) = 0;
  // Exclusive-locking WAL: the last commit frame written since the last
  // boundary (0: none).
  uint32_t pending_commit_frame_ QUIESCE_GUARDED_BY(mu) = 0;
  uint32_t pending_commit_pages_ QUIESCE_GUARDED_BY(mu) = 0;
  uint32_t pending_salt1_ QUIESCE_GUARDED_BY(mu) = 0;
  uint32_t pending_salt2_ QUIESCE_GUARDED_BY(mu) = 0;

  std::array<CommitEvent, kEventCapacity> events_ QUIESCE_GUARDED_BY(mu);
  uint64_t next_seq_ QUIESCE_GUARDED_BY(mu) = 1;
};

}  // namespace quiesce

#endif  // QUIESCE_VFS_DATABASE_H_
