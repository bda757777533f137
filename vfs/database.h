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
#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "gate.h"
#include "mutex.h"
#include "position.h"
#include "result.h"

struct sqlite3_vfs;

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

// The files whose writes pass the exclusive-locking write gate.
enum class WriteTarget : uint8_t { kMain, kWal };

// What the shim knows of a database's last commit, read in one go.
struct CommittedState {
  bool wal = false;     // the database is in WAL mode
  bool known = false;   // `position` is exact (a commit or a baseline seen)
  // Exclusive-locking WAL: a commit frame is written and its commit not yet
  // complete (it completes at COMMIT_PHASETWO).
  bool commit_in_flight = false;
  uint64_t generation = 0;
  Position position;
};

// The commit a consistent copy stands at.
struct PinnedPoint {
  uint64_t generation = 0;
  Position position;
  uint32_t db_pages = 0;
  uint32_t page_size = 0;
  uint32_t n_backfill = 0;  // WAL: frames already copied into the db file
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
  bool gate_closed = false;
  GateStats gate;
};

class Database {
 public:
  static constexpr size_t kEventCapacity = 4096;

  Database(Context* context, uint64_t id, std::string path, FileId file_id,
           std::string vfs_name, sqlite3_vfs* base_vfs);
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;

  uint64_t id() const { return id_; }
  const std::string& path() const { return path_; }
  FileId file_id() const { return file_id_; }
  const std::string& vfs_name() const { return vfs_name_; }
  // The VFS below the shim that opened the database: quiesce reads through
  // it where it cannot open a connection (exclusive locking mode).
  sqlite3_vfs* base_vfs() const { return base_vfs_; }
  Context* context() const { return context_; }
  Counters& counters() { return counters_; }

  DatabaseInfo Info() QUIESCE_EXCLUDES(mu);

  // Events with seq > after, at most max of them. *lost is set when events
  // after `after` were already overwritten (the reader fell behind).
  std::vector<CommitEvent> EventsAfter(uint64_t after, size_t max, bool* lost)
      QUIESCE_EXCLUDES(mu);
  uint64_t last_event_seq() QUIESCE_EXCLUDES(mu);

  // --- called by the shim's file methods ---------------------------------
  // The lock table's mutex: it guards this object's state and the lock
  // bits of its handles (ShimFile). Besides Database, only the lock path
  // takes it (shim_file.cc's xLock, xUnlock, xShmMap, xShmLock, xShmUnmap):
  // the gate check, the base VFS's lock call and the table's update must be
  // atomic with respect to a drain (DESIGN.md "The gate").
  Mutex mu;

  void AddHandle(ShimFile* file) QUIESCE_EXCLUDES(mu);
  void RemoveHandle(ShimFile* file) QUIESCE_EXCLUDES(mu);
  // The wal-index slots `file` holds shared (bit n: slot n), read under mu.
  uint8_t SharedShmLocks(const ShimFile* file) QUIESCE_EXCLUDES(mu);
  // Returns once every call that was holding mu has ended: one that began
  // before a change (a commit observer cleared) has seen it or is over.
  void Fence() QUIESCE_EXCLUDES(mu);

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
  // The journal's header was read: a rollback is playing it back (the only
  // read of a journal's header while its transaction is open).
  void OnJournalHeaderRead() QUIESCE_EXCLUDES(mu);
  void OnMainUnlocked() QUIESCE_REQUIRES(mu);
  // The journal ended in this way (tells DELETE / TRUNCATE / PERSIST apart).
  void OnJournalFinalized(JournalMode how) QUIESCE_EXCLUDES(mu);
  // A WAL file of this database was opened; a rollback journal was opened;
  // page 1 was read or written with these file format bytes (2: WAL).
  void OnWalFileOpened() QUIESCE_EXCLUDES(mu);
  void OnJournalFileOpened() QUIESCE_EXCLUDES(mu);
  void OnFileFormatSeen(uint8_t write_version) QUIESCE_EXCLUDES(mu);
  void SetLockingMode(LockingMode mode) QUIESCE_EXCLUDES(mu);
  // The host asked for PRAGMA foreign_keys=...: quiesce's own connection
  // applies the same.
  void SetHostForeignKeys(bool on) { host_foreign_keys_.store(on); }
  bool host_foreign_keys() const { return host_foreign_keys_.load(); }
  void SetPageSize(uint32_t page_size) QUIESCE_EXCLUDES(mu);

  // Exclusive-locking WAL (no wal-index calls): a frame header was written.
  void OnWalFrameHeaderWritten(uint32_t frame, uint32_t commit_pages,
                               uint32_t salt1, uint32_t salt2)
      QUIESCE_EXCLUDES(mu);

  // Exclusive locking mode (no lock calls between transactions): every
  // write and truncate of the database file or its WAL by the host passes
  // here, so that a closed write gate can hold back those that would change
  // what a raw copy reads. Cheap to ask; the rest only in that mode.
  bool exclusive_writes() const {
    return exclusive_writes_.load(std::memory_order_relaxed);
  }
  void BeginExclusiveWrite(WriteTarget target, int64_t offset)
      QUIESCE_EXCLUDES(mu);
  void EndExclusiveWrite(WriteTarget target, bool written)
      QUIESCE_EXCLUDES(mu);

  // --- consistent copies ----------------------------------------------------
  CommittedState Committed() QUIESCE_EXCLUDES(mu);
  // While the exclusive write gate is closed: WAL writes and truncates below
  // `bytes` wait, the rest (frames appended past the copied prefix) go
  // ahead. It closes holding back every WAL write until this is said.
  void SetWalGuard(uint64_t bytes) QUIESCE_EXCLUDES(mu);
  // WAL: the point named by the wal-index header, read through quiesce's
  // own handle while no handle of this process holds WRITE (a commit that
  // published its header but has not released WRITE is not yet counted).
  // A position the shim never saw is recorded as a foreign commit first.
  // Returns false when a local writer is mid-commit: try again.
  bool PinWalPoint(const ShimFile* own, PinnedPoint* out) QUIESCE_EXCLUDES(mu);
  // Rollback journal, with quiesce holding SHARED (no commit can happen):
  // the point named by the change counter on disk.
  PinnedPoint PinRollbackPoint(uint32_t change_counter, uint32_t db_pages,
                               uint32_t page_size) QUIESCE_EXCLUDES(mu);

  // --- the gate -----------------------------------------------------------
  using Clock = std::chrono::steady_clock;

  // Closes the gate to new host transactions and waits, until
  // drain_deadline (capped, like closed_until, at lease_cap from now), for
  // the host handles that hold locks (as `level` counts them) to finish,
  // and for the requests the last reopen released to pass. On success the
  // point is quiescent and stays so until ReopenGate(token) or
  // `closed_until`, whichever comes first; on timeout the gate reopens and
  // the error names what held it.
  Result<uint64_t> CloseGate(Drain level, bool readers_may_proceed,
                             Clock::time_point drain_deadline,
                             Clock::time_point closed_until)
      QUIESCE_EXCLUDES(mu);
  // Reopens the gate. Returns false when the lease had already ended by
  // its time limit (the point was not quiescent throughout).
  bool ReopenGate(uint64_t token) QUIESCE_EXCLUDES(mu);

  // Host lock path, with mu held, before each try at the base VFS: waits,
  // until `deadline` at most, while a closed gate holds the request back.
  void AdmitShmLock(ShimFile* f, int offset, int n, int flags,
                    Clock::time_point deadline) QUIESCE_REQUIRES(mu);
  void AdmitLock(ShimFile* f, int level, Clock::time_point deadline)
      QUIESCE_REQUIRES(mu);
  // After the base VFS said BUSY: when quiesce's own connection holds a
  // conflicting lock that this request may wait for, waits (bounded) for it
  // to go and returns true so the caller retries; false when there is
  // nothing to wait for, and the host gets BUSY as beside any other reader.
  // In WAL mode only a FULL, RESTART or TRUNCATE checkpoint waits for a
  // snapshot's read mark: read-mark probes, passive and automatic
  // checkpoints and WAL restarts move on when a mark is busy. The wait
  // releases mu: the retry must pass Admit*Lock again.
  bool AwaitOwnShmRelease(ShimFile* f, int offset, int n, int flags,
                          Clock::time_point deadline) QUIESCE_REQUIRES(mu);
  bool AwaitOwnLockRelease(ShimFile* f, int level, Clock::time_point deadline)
      QUIESCE_REQUIRES(mu);
  // How long the longest-waiting host request has waited for quiesce's own
  // connection's lock (and, with at_gate, at a closed gate); zero when
  // none waits.
  // An operation that holds what a host waits for gives it up once this
  // passes kClientYield while it waits on its client, or lease_cap while
  // it works (DESIGN.md: no client can lengthen a host wait).
  Clock::duration HostWaitingFor(bool at_gate) QUIESCE_EXCLUDES(mu);
  // An operation gave up what a host waited for: counted in GateStats.
  void CountYield() QUIESCE_EXCLUDES(mu);
  // The bound on a host wait that a stalled client can cause.
  static constexpr Clock::duration kClientYield = std::chrono::milliseconds(50);
  // A handle's locks changed: wakes a drain or a waiter that may care.
  void OnLocksChanged(ShimFile* f) QUIESCE_REQUIRES(mu);
  Clock::duration max_stall() const { return max_stall_; }
  Clock::duration lease_cap() const { return gate_.lease_cap(); }

  // Some handle of this process holds the WAL WRITE lock, or a rollback
  // lock of RESERVED or more: a commit of ours may be under way.
  bool LocalWriterActive() QUIESCE_REQUIRES(mu);

 private:
  void RecordCommit(const Position& pos, uint32_t db_pages, uint32_t frames)
      QUIESCE_REQUIRES(mu);
  void RecordForeign(const Position& pos, uint32_t db_pages)
      QUIESCE_REQUIRES(mu);
  void PushEvent(CommitEvent event) QUIESCE_REQUIRES(mu);

  bool Idle(const ShimFile* f) const QUIESCE_REQUIRES(mu);
  bool GateHoldsBack(const ShimFile* f, bool shm, int offset, int flags,
                     int level) QUIESCE_REQUIRES(mu);
  bool ExclusiveWriteHeldBack(WriteTarget target, int64_t offset)
      QUIESCE_REQUIRES(mu);
  // The exclusive write gate's drain is not done: a write is under way, or
  // a rollback transaction has written the database file.
  bool ExclusiveWritesBusy() const QUIESCE_REQUIRES(mu);
  void SetLockingModeLocked(LockingMode mode) QUIESCE_REQUIRES(mu);
  // The first host handle that keeps the gate from draining, or null.
  const ShimFile* DrainBlocker() const QUIESCE_REQUIRES(mu);
  // What keeps a closing gate from draining, in words for its error.
  std::string DescribeDrainBlocker(bool write_gate) const QUIESCE_REQUIRES(mu);
  // Gate::AwaitOwn, logging a wait that reached max_stall; true when the
  // caller should retry.
  template <typename Conflicts>
  bool AwaitOwn(Conflicts conflicts, Clock::time_point deadline)
      QUIESCE_REQUIRES(mu);
  // A host request waited max_stall (a fault): said in SQLite's log.
  void LogStall(const char* request, const char* at);

  Context* const context_;
  const uint64_t id_;
  const std::string path_;
  const FileId file_id_;
  const std::string vfs_name_;
  sqlite3_vfs* const base_vfs_;
  Counters counters_;
  std::atomic<bool> host_foreign_keys_{false};

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
  // The wal-index iChange when a read lock last looked at the header.
  uint32_t last_change_seen_ QUIESCE_GUARDED_BY(mu) = 0;
  int64_t last_commit_us_ QUIESCE_GUARDED_BY(mu) = 0;
  uint32_t page_size_ QUIESCE_GUARDED_BY(mu) = 0;
  uint32_t db_pages_ QUIESCE_GUARDED_BY(mu) = 0;
  // Exclusive-locking WAL: the last commit frame written since the last
  // boundary (0: none).
  uint32_t pending_commit_frame_ QUIESCE_GUARDED_BY(mu) = 0;
  uint32_t pending_commit_pages_ QUIESCE_GUARDED_BY(mu) = 0;
  uint32_t pending_salt1_ QUIESCE_GUARDED_BY(mu) = 0;
  uint32_t pending_salt2_ QUIESCE_GUARDED_BY(mu) = 0;

  // Exclusive locking mode's write gate: mirrors locking_mode_ for the
  // write path; writes admitted and not yet returned; whether a rollback
  // transaction has written the database file since its journal last ended
  // (and since when); the WAL offset below which writes wait.
  std::atomic<bool> exclusive_writes_{false};
  int writes_in_flight_ QUIESCE_GUARDED_BY(mu) = 0;
  bool excl_db_dirty_ QUIESCE_GUARDED_BY(mu) = false;
  // The open transaction's journal was played back (it is rolling back):
  // its journal's end ends it, where a commit ends at COMMIT_PHASETWO.
  bool journal_played_back_ QUIESCE_GUARDED_BY(mu) = false;
  Clock::time_point excl_dirty_since_ QUIESCE_GUARDED_BY(mu);
  uint64_t wal_guard_ QUIESCE_GUARDED_BY(mu) = 0;

  const Clock::duration max_stall_;
  // The gate; its lease cap is max_stall less a margin, so quiesce gives up
  // before any host waiter would.
  Gate gate_;

  std::array<CommitEvent, kEventCapacity> events_ QUIESCE_GUARDED_BY(mu);
  uint64_t next_seq_ QUIESCE_GUARDED_BY(mu) = 1;
};

}  // namespace quiesce

#endif  // QUIESCE_VFS_DATABASE_H_
