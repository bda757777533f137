// Consistent snapshots of a live database, written as one self-contained
// database image to a file descriptor a client passed in.
//
// WAL: no gate. quiesce's own connection holds a read transaction (its read
// mark keeps checkpoints from backfilling past it and the WAL from
// restarting) while the database file and the committed WAL prefix are read
// through base-VFS file objects; the WAL is cut at the published mxFrame and
// validated by its salts and checksum chain; pages are streamed in order,
// each from its newest committed frame or else from the database file.
// Host writers and passive checkpoints never wait.
//
// Rollback journal: the gate closes, host writers drain, quiesce takes
// SHARED, the gate reopens at once, and the database file is copied; a host
// writer that needs EXCLUSIVE meanwhile waits (bounded) for the copy.
//
// The image is a rollback-journal database (header bytes 18 and 19 set to
// 1), so it opens anywhere without a WAL or -shm next to it.
#ifndef QUIESCE_VFS_SNAPSHOT_H_
#define QUIESCE_VFS_SNAPSHOT_H_

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <string>

#include "database.h"
#include "result.h"

namespace quiesce {

struct SnapshotResult {
  PinnedPoint point;       // the commit the image stands at
  uint64_t bytes = 0;      // bytes written (page_count * page_size)
  uint32_t page_count = 0;
  uint32_t wal_frames = 0; // committed WAL frames the image drew on
  std::string sha256;      // of the bytes written, hex
};

struct SnapshotOptions {
  // Everything, the copy included, ends by this time or fails as kTimeout
  // (releasing whatever it held).
  std::chrono::steady_clock::time_point deadline;
  // Set by someone else to stop the snapshot early (kBusy "cancelled").
  const std::atomic<bool>* cancelled = nullptr;
  // Called now and then with pages written so far and in all.
  std::function<void(uint32_t done, uint32_t total)> progress;
};

Result<SnapshotResult> WriteSnapshot(Database& db, int out_fd,
                                     const SnapshotOptions& options);

}  // namespace quiesce

#endif  // QUIESCE_VFS_SNAPSHOT_H_
