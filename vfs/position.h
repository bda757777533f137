// Where a database stands: the exact position of its last commit, and the
// event reported for each commit.
#ifndef QUIESCE_VFS_POSITION_H_
#define QUIESCE_VFS_POSITION_H_

#include <cstdint>

namespace quiesce {

enum class JournalMode : uint8_t {
  kUnknown,   // no transaction seen yet
  kRollback,  // some rollback journal mode; refined when the journal ends
  kDelete,
  kTruncate,
  kPersist,
  kWal,
};
const char* JournalModeName(JournalMode mode);

enum class LockingMode : uint8_t { kNormal, kExclusive };
const char* LockingModeName(LockingMode mode);

// The exact position of a database. In WAL mode the WAL's salts and the
// wal-index's mxFrame name one commit; in rollback mode the file change
// counter in the database header does.
struct Position {
  bool wal = false;
  uint32_t salt1 = 0;
  uint32_t salt2 = 0;
  uint32_t mx_frame = 0;
  uint32_t change_counter = 0;

  friend bool operator==(const Position&, const Position&) = default;
};

struct CommitEvent {
  uint64_t seq = 0;          // per-database event sequence, from 1
  uint64_t generation = 0;   // the database's generation after this event
  bool foreign = false;      // commits by another process, coalesced
  Position position;
  int64_t time_us = 0;       // wall clock, microseconds since the epoch
  uint32_t db_pages = 0;     // database size in pages after the commit
  uint32_t frames = 0;       // WAL frames (or changed pages) it added
};

}  // namespace quiesce

#endif  // QUIESCE_VFS_POSITION_H_
