#include "snapshot.h"

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <thread>
#include <vector>

#include "config.h"
#include "context.h"
#include "own_connection.h"
#include "sha256.h"
#include "shim_file.h"
#include "wal_format.h"

namespace quiesce {
namespace {

using Clock = std::chrono::steady_clock;

Error Timeout(const std::string& what) {
  return Error{ErrorCode::kTimeout, what + " did not finish in time"};
}

// Writes to the client's descriptor without ever blocking past the
// deadline: a client that stops reading its pipe costs a timeout, not a
// stuck thread holding a read mark.
class Output {
 public:
  Output(int fd, Clock::time_point deadline,
         const std::atomic<bool>* cancelled)
      : fd_(fd), deadline_(deadline), cancelled_(cancelled) {
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
    while (size > 0) {
      const ssize_t n = ::write(fd_, data, size);
      if (n > 0) {
        data += n;
        size -= static_cast<size_t>(n);
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && errno == EAGAIN) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline_ - Clock::now());
        if (left.count() <= 0) return Timeout("writing the snapshot");
        if (cancelled_ && cancelled_->load()) {
          return Error{ErrorCode::kBusy, "the snapshot was cancelled"};
        }
        pollfd p{fd_, POLLOUT, 0};
        poll(&p, 1, static_cast<int>(std::min<int64_t>(left.count(), 100)));
        continue;
      }
      return Error{ErrorCode::kIoError,
                   std::string("writing the snapshot: ") +
                       (n < 0 ? std::strerror(errno) : "wrote nothing")};
    }
    return Ok{};
  }
  uint64_t bytes() const { return bytes_; }
  std::string Sha256Hex() { return sha_.FinishHex(); }

 private:
  const int fd_;
  const Clock::time_point deadline_;
  const std::atomic<bool>* const cancelled_;
  int flags_ = -1;
  Sha256 sha_;
  uint64_t bytes_ = 0;
};

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

// Streams pages 1..point.db_pages, each from its WAL frame if it has one,
// else from the database file.
Result<SnapshotResult> StreamImage(Database& db, sqlite3_file* main,
                                   sqlite3_file* wal, const PinnedPoint& point,
                                   uint32_t cut, int out_fd,
                                   const SnapshotOptions& opt) {
  auto index = IndexWal(wal, point, cut);
  if (!index.ok()) return index.error();
  const std::vector<uint32_t>& frame_of = index.value();
  // Pages go out a batch at a time: one read of the database file for the
  // whole batch, then the pages whose newest version is in the WAL on top.
  constexpr uint32_t kBatch = 64;
  const uint32_t ps = point.page_size;
  std::vector<unsigned char> batch(size_t{kBatch} * ps);
  Output out(out_fd, opt.deadline, opt.cancelled);
  for (uint32_t first = 1; first <= point.db_pages; first += kBatch) {
    if (Clock::now() >= opt.deadline) return Timeout("the snapshot");
    if (opt.cancelled && opt.cancelled->load()) {
      return Error{ErrorCode::kBusy, "the snapshot was cancelled"};
    }
    // A host checkpoint or writer waiting for our lock comes first.
    if (db.HostWaitingOnOwnTooLong()) {
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

uint32_t Big32(const unsigned char* p) { return wal::LoadBig32(p); }

// The page size and page count of a database file from its header (the
// in-header size when valid, else the file's length).
Result<Ok> SizeFromFile(sqlite3_file* main, PinnedPoint* point) {
  sqlite3_int64 file_size = 0;
  main->pMethods->xFileSize(main, &file_size);
  if (file_size < 100) {
    point->db_pages = 0;  // an empty database: an empty image
    return Ok{};
  }
  unsigned char hdr[100];
  if (auto r = ReadAt(main, hdr, sizeof(hdr), 0, "the database header");
      !r.ok()) {
    return r;
  }
  uint32_t page_size = (uint32_t{hdr[16]} << 8) | hdr[17];
  if (page_size == 1) page_size = 65536;
  uint32_t pages = Big32(hdr + 28);
  if (pages == 0 || Big32(hdr + 92) != Big32(hdr + 24)) {
    pages = static_cast<uint32_t>(file_size / page_size);
  }
  point->page_size = page_size;
  point->db_pages = pages;
  return Ok{};
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
    if (Clock::now() >= opt.deadline) return Timeout("pinning a snapshot");
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
      own.Exec("ROLLBACK");
      std::this_thread::sleep_for(std::chrono::microseconds(200));
      continue;
    }
    const bool read0 = main->shm_shared & (1u << wal::kReadLock0);
    if (read0 && point.n_backfill != point.position.mx_frame) {
      own.Exec("ROLLBACK");
      continue;
    }
    if (point.position.mx_frame == 0 || point.page_size == 0) {
      // An empty WAL (opened, nothing committed since): the wal-index knows
      // no size, and the database file alone is the state.
      if (auto r = SizeFromFile(main->real(), &point); !r.ok()) {
        own.Exec("ROLLBACK");
        return r.error();
      }
    }
    sqlite3_file* wal = own.wal_file();
    const uint32_t cut = read0 ? 0 : point.position.mx_frame;
    if (cut != 0 && wal == nullptr) {
      own.Exec("ROLLBACK");
      return Error{ErrorCode::kInternal, "the WAL is not open"};
    }
    auto result =
        StreamImage(db, main->real(), wal, point, cut, out_fd, opt);
    own.Exec("ROLLBACK");
    return result;
  }
}



Result<SnapshotResult> RollbackSnapshot(Database& db, int out_fd,
                                        SnapshotOptions opt) {
  // Host writers wait for the copy: it must end before any would give up.
  const Clock::time_point cap = Clock::now() + db.lease_cap();
  if (opt.deadline > cap) opt.deadline = cap;
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
  unsigned char hdr[100];
  if (auto r = ReadAt(main, hdr, sizeof(hdr), 0, "the database header");
      !r.ok()) {
    own.Exec("ROLLBACK");
    return r.error();
  }
  uint32_t page_size = (uint32_t{hdr[16]} << 8) | hdr[17];
  if (page_size == 1) page_size = 65536;
  sqlite3_int64 file_size = 0;
  main->pMethods->xFileSize(main, &file_size);
  // The in-header size is valid when "version-valid-for" matches the
  // change counter; older writers left only the file size to go by.
  uint32_t pages = Big32(hdr + 28);
  if (pages == 0 || Big32(hdr + 92) != Big32(hdr + 24)) {
    pages = static_cast<uint32_t>(file_size / page_size);
  }
  const PinnedPoint point = db.PinRollbackPoint(Big32(hdr + 24), pages,
                                                page_size);
  auto result = StreamImage(db, main, nullptr, point, 0, out_fd, opt);
  own.Exec("ROLLBACK");
  return result;
}

}  // namespace

Result<SnapshotResult> WriteSnapshot(Database& db, int out_fd,
                                     const SnapshotOptions& options) {
  const DatabaseInfo info = db.Info();
  if (info.locking_mode == LockingMode::kExclusive) {
    return Error{ErrorCode::kUnsupported,
                 db.path() + " uses locking_mode=EXCLUSIVE: no second "
                             "connection can read it"};
  }
  if (info.journal_mode == JournalMode::kWal) {
    return WalSnapshot(db, out_fd, options);
  }
  return RollbackSnapshot(db, out_fd, options);
}

}  // namespace quiesce
