#include "image_stream.h"

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <vector>

#include "errno_text.h"
#include "sha256.h"
#include "wal_format.h"

namespace quiesce {
namespace {

using Clock = std::chrono::steady_clock;

// Writes to the client's descriptor without ever blocking past the
// deadline: a client that stops reading its pipe costs a timeout, not a
// stuck thread holding a read mark. While it waits on the client it gives
// up at once when a host request has waited on quiesce for kClientYield
// (the client cannot lengthen a host wait), and after kClientStall with
// nothing read (a snapshot's read mark keeps checkpoints from finishing:
// the WAL would grow for as long as the client sleeps).
class Output {
 public:
  static constexpr auto kClientStall = std::chrono::seconds(10);
  static constexpr auto kPollSlice = std::chrono::milliseconds(10);

  Output(Database& db, bool holds_gate, int fd, Clock::time_point deadline,
         const std::atomic<bool>* cancelled)
      : db_(db),
        holds_gate_(holds_gate),
        fd_(fd),
        deadline_(deadline),
        cancelled_(cancelled) {
    flags_ = fcntl(fd_, F_GETFL);
    if (flags_ >= 0 && !(flags_ & O_NONBLOCK)) {
      fcntl(fd_, F_SETFL, flags_ | O_NONBLOCK);
    }
  }
  ~Output() {
    if (flags_ >= 0 && !(flags_ & O_NONBLOCK)) fcntl(fd_, F_SETFL, flags_);
  }
  Output(const Output&) = delete;
  Output& operator=(const Output&) = delete;

  Result<Ok> Write(const unsigned char* data, size_t size) {
    sha_.Update(data, size);
    bytes_ += size;
    Clock::time_point last_progress = Clock::now();
    while (size > 0) {
      const ssize_t n = ::write(fd_, data, size);
      if (n > 0) {
        data += n;
        size -= static_cast<size_t>(n);
        last_progress = Clock::now();
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && errno == EAGAIN) {
        const Clock::time_point now = Clock::now();
        if (now >= deadline_) return TimeoutError("writing the snapshot");
        if (cancelled_ && cancelled_->load()) {
          return Error{ErrorCode::kBusy, "the snapshot was cancelled"};
        }
        if (db_.HostWaitingFor(holds_gate_) >= Database::kClientYield) {
          db_.CountYield();
          return Error{ErrorCode::kBusy,
                       "the host needed what the snapshot held while its "
                       "client was not reading; read the snapshot as fast "
                       "as it comes, and try again"};
        }
        if (now - last_progress >= kClientStall) {
          return Error{ErrorCode::kTimeout,
                       "the client read nothing of the snapshot for 10 s"};
        }
        pollfd p{fd_, POLLOUT, 0};
        poll(&p, 1, static_cast<int>(kPollSlice.count()));
        continue;
      }
      return Error{ErrorCode::kIoError,
                   std::string("writing the snapshot: ") +
                       (n < 0 ? ErrnoText(errno) : std::string("wrote nothing"))};
    }
    return Ok{};
  }
  uint64_t bytes() const { return bytes_; }
  std::string Sha256Hex() { return sha_.FinishHex(); }

 private:
  Database& db_;
  const bool holds_gate_;
  const int fd_;
  const Clock::time_point deadline_;
  const std::atomic<bool>* const cancelled_;
  int flags_ = -1;
  Sha256 sha_;
  uint64_t bytes_ = 0;
};

// The committed WAL prefix: for each page, the newest frame <= cut. Every
// frame up to the cut must carry the WAL's salts and continue its checksum
// chain, or the WAL is not what the wal-index says it is.
Result<std::vector<uint32_t>> IndexWal(sqlite3_file* wal, const PinnedPoint& p,
                                       uint32_t cut) {
  std::vector<uint32_t> frame_of(p.db_pages + 1, 0);
  if (cut == 0) return frame_of;
  unsigned char hdr[wal::kHeaderSize];
  if (auto r = ReadAt(wal, hdr, sizeof(hdr), 0, "the WAL header"); !r.ok()) {
    return r.error();
  }
  const uint32_t magic = wal::LoadBig32(hdr);
  if ((magic & ~1u) != wal::kMagicLittleEndian) {
    return Error{ErrorCode::kIoError, "the WAL header has no WAL magic"};
  }
  const bool big_endian = magic & 1u;
  const uint32_t page_size = wal::LoadBig32(hdr + 8);
  if (page_size != p.page_size || wal::LoadBig32(hdr + 16) != p.position.salt1 ||
      wal::LoadBig32(hdr + 20) != p.position.salt2) {
    return Error{ErrorCode::kIoError,
                 "the WAL header does not match the wal-index"};
  }
  uint32_t sum[2] = {0, 0};
  wal::Checksum(big_endian, hdr, 24, sum);
  if (sum[0] != wal::LoadBig32(hdr + 24) || sum[1] != wal::LoadBig32(hdr + 28)) {
    return Error{ErrorCode::kIoError, "the WAL header checksum is wrong"};
  }
  // Frames are read a batch at a time: one read per 32 frames.
  constexpr uint32_t kBatch = 32;
  const size_t stride = wal::kFrameHeaderSize + page_size;
  std::vector<unsigned char> frames(kBatch * stride);
  for (uint32_t first = 1; first <= cut; first += kBatch) {
    const uint32_t count = std::min(kBatch, cut - first + 1);
    const int64_t offset =
        wal::kHeaderSize + int64_t{first - 1} * static_cast<int64_t>(stride);
    if (auto r = ReadAt(wal, frames.data(), static_cast<int>(count * stride),
                        offset, "WAL frames");
        !r.ok()) {
      return r.error();
    }
    for (uint32_t k = 0; k < count; ++k) {
      const uint32_t i = first + k;
      const unsigned char* fh = frames.data() + k * stride;
      wal::Checksum(big_endian, fh, 8, sum);
      wal::Checksum(big_endian, fh + wal::kFrameHeaderSize, page_size, sum);
      if (wal::LoadBig32(fh + 8) != p.position.salt1 ||
          wal::LoadBig32(fh + 12) != p.position.salt2 ||
          sum[0] != wal::LoadBig32(fh + 16) ||
          sum[1] != wal::LoadBig32(fh + 20)) {
        return Error{ErrorCode::kIoError,
                     "WAL frame " + std::to_string(i) +
                         " breaks the checksum chain below the published end " +
                         std::to_string(cut)};
      }
      const uint32_t pgno = wal::LoadBig32(fh);
      if (pgno >= 1 && pgno <= p.db_pages) frame_of[pgno] = i;
    }
  }
  return frame_of;
}

}  // namespace

Error TimeoutError(const std::string& what) {
  return Error{ErrorCode::kTimeout, what + " did not finish in time"};
}

Result<Ok> ReadAt(sqlite3_file* file, void* buf, int size, int64_t offset,
                  const char* what) {
  const int rc = file->pMethods->xRead(file, buf, size, offset);
  if (rc != SQLITE_OK) {
    return Error{ErrorCode::kIoError,
                 std::string("reading ") + what + " failed (SQLite code " +
                     std::to_string(rc) + ")"};
  }
  return Ok{};
}

Result<DbHeader> ReadDbHeader(sqlite3_file* main) {
  DbHeader out;
  sqlite3_int64 file_size = 0;
  main->pMethods->xFileSize(main, &file_size);
  if (file_size < 100) return out;  // an empty database: an empty image
  unsigned char hdr[100];
  if (auto r = ReadAt(main, hdr, sizeof(hdr), 0, "the database header");
      !r.ok()) {
    return r.error();
  }
  out.page_size = (uint32_t{hdr[16]} << 8) | hdr[17];
  if (out.page_size == 1) out.page_size = 65536;
  if (out.page_size < 512 || (out.page_size & (out.page_size - 1)) != 0) {
    return Error{ErrorCode::kIoError,
                 "the database header names no valid page size"};
  }
  out.change_counter = wal::LoadBig32(hdr + 24);
  // The in-header size is valid when "version-valid-for" matches the
  // change counter; older writers left only the file size to go by.
  out.pages = wal::LoadBig32(hdr + 28);
  if (out.pages == 0 || wal::LoadBig32(hdr + 92) != out.change_counter) {
    out.pages = static_cast<uint32_t>(file_size / out.page_size);
  }
  return out;
}

// Streams pages 1..point.db_pages, each from its WAL frame if it has one,
// else from the database file.
Result<SnapshotResult> StreamImage(Database& db, sqlite3_file* main,
                                   sqlite3_file* wal, const PinnedPoint& point,
                                   uint32_t cut, int out_fd, bool holds_gate,
                                   const SnapshotOptions& opt) {
  auto index = IndexWal(wal, point, cut);
  if (!index.ok()) return index.error();
  const std::vector<uint32_t>& frame_of = index.value();
  // Pages go out a batch at a time: one read of the database file for the
  // whole batch, then the pages whose newest version is in the WAL on top.
  constexpr uint32_t kBatch = 64;
  const uint32_t ps = point.page_size;
  std::vector<unsigned char> batch(size_t{kBatch} * ps);
  Output out(db, holds_gate, out_fd, opt.deadline, opt.cancelled);
  for (uint32_t first = 1; first <= point.db_pages; first += kBatch) {
    if (Clock::now() >= opt.deadline) return TimeoutError("the snapshot");
    if (opt.cancelled && opt.cancelled->load()) {
      return Error{ErrorCode::kBusy, "the snapshot was cancelled"};
    }
    // A host checkpoint or writer waiting for our lock comes first.
    if (db.HostWaitingFor(holds_gate) >= db.lease_cap()) {
      db.CountYield();
      return Error{ErrorCode::kBusy,
                   "the host needed the snapshot's lock for longer than the "
                   "lease allows; try again"};
    }
    const uint32_t count = std::min(kBatch, point.db_pages - first + 1);
    // Pages past the database file's end exist only in the WAL: a short
    // read zero-fills them, and the WAL's copies replace them below.
    const int rc = main->pMethods->xRead(main, batch.data(),
                                         static_cast<int>(count * ps),
                                         int64_t{first - 1} * ps);
    if (rc != SQLITE_OK && rc != SQLITE_IOERR_SHORT_READ) {
      return Error{ErrorCode::kIoError,
                   "reading database pages failed (SQLite code " +
                       std::to_string(rc) + ")"};
    }
    if (rc == SQLITE_IOERR_SHORT_READ) {
      // The batch ran past the file's end. Pages past it come back
      // zero-filled and must all have a WAL frame (checkpoints extend the
      // file only with pages that have frames); one that has none is not
      // in the database at all.
      sqlite3_int64 file_size = 0;
      main->pMethods->xFileSize(main, &file_size);
      for (uint32_t k = 0; k < count; ++k) {
        if (frame_of[first + k] != 0) continue;
        if (int64_t{first + k} * ps > file_size) {
          return Error{ErrorCode::kIoError,
                       "a short read of page " + std::to_string(first + k) +
                           " past the end of the database file, with no WAL frame"};
        }
        // Inside the file: read it again on its own, so that a base VFS
        // that cut the batch short before the file's end (an I/O fault)
        // cannot leave zeros in the image.
        if (auto r = ReadAt(main, batch.data() + size_t{k} * ps,
                            static_cast<int>(ps),
                            int64_t{first + k - 1} * ps, "a database page");
            !r.ok()) {
          return r.error();
        }
      }
    }
    for (uint32_t k = 0; k < count; ++k) {
      const uint32_t frame = frame_of[first + k];
      if (frame == 0) continue;
      const int64_t offset =
          wal::kHeaderSize +
          int64_t{frame - 1} * (wal::kFrameHeaderSize + int64_t{ps}) +
          wal::kFrameHeaderSize;
      if (auto r = ReadAt(wal, batch.data() + size_t{k} * ps,
                          static_cast<int>(ps), offset, "a WAL page");
          !r.ok()) {
        return r.error();
      }
    }
    if (first == 1) {
      batch[18] = 1;  // a rollback-journal database: no WAL needed to open it
      batch[19] = 1;
    }
    if (auto w = out.Write(batch.data(), size_t{count} * ps); !w.ok()) {
      return w.error();
    }
    if (opt.progress) opt.progress(first + count - 1, point.db_pages);
  }
  SnapshotResult result;
  result.point = point;
  result.bytes = out.bytes();
  result.page_count = point.db_pages;
  for (uint32_t f : frame_of) result.wal_frames += f != 0;
  result.sha256 = out.Sha256Hex();
  return result;
}

}  // namespace quiesce
