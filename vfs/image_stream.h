// Reading a database's pages through base-VFS file objects and streaming
// them, in page order, as one self-contained database image: what every
// kind of snapshot ends with, once it has pinned a point and made sure the
// bytes it reads cannot change under it.
#ifndef QUIESCE_VFS_IMAGE_STREAM_H_
#define QUIESCE_VFS_IMAGE_STREAM_H_

#include <sqlite3.h>

#include <cstdint>
#include <string>

#include "database.h"
#include "result.h"
#include "snapshot.h"

namespace quiesce {

Error TimeoutError(const std::string& what);

// One read that must return every byte asked for; `what` names it in the
// error.
Result<Ok> ReadAt(sqlite3_file* file, void* buf, int size, int64_t offset,
                  const char* what);

// What a database file's header says: the page size, the page count (the
// in-header size when it is valid, else the file's length), and the change
// counter. A file shorter than its header is an empty database: all zero.
struct DbHeader {
  uint32_t page_size = 0;
  uint32_t pages = 0;
  uint32_t change_counter = 0;
};
Result<DbHeader> ReadDbHeader(sqlite3_file* main);

// Streams pages 1..point.db_pages to out_fd, each from its newest WAL frame
// at or below `cut` (0: the WAL is not read) or else from the database file.
// Every WAL frame up to the cut must carry the point's salts and continue
// the checksum chain. Page 1 goes out with the rollback-journal file format
// (bytes 18 and 19 set to 1), so the image opens without a WAL.
// `holds_gate`: the copy runs behind a closed gate, so host requests
// waiting there wait for it too.
Result<SnapshotResult> StreamImage(Database& db, sqlite3_file* main,
                                   sqlite3_file* wal, const PinnedPoint& point,
                                   uint32_t cut, int out_fd, bool holds_gate,
                                   const SnapshotOptions& opt);

}  // namespace quiesce

#endif  // QUIESCE_VFS_IMAGE_STREAM_H_
