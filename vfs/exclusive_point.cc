#include "exclusive_point.h"

#include <sqlite3.h>

#include <algorithm>
#include <thread>
#include <vector>

#include "image_stream.h"
#include "wal_format.h"

namespace quiesce {
namespace {

using Clock = std::chrono::steady_clock;

constexpr uint32_t kWalFormatVersion = 3007000;

// A WAL header as SQLite's recovery accepts it.
struct WalHeader {
  bool valid = false;
  bool big_endian = false;
  uint32_t page_size = 0;
  uint32_t salt1 = 0;
  uint32_t salt2 = 0;
  uint32_t checksum[2] = {0, 0};  // where the frames' checksum chain starts
};

Result<WalHeader> ReadWalHeader(sqlite3_file* wal, int64_t wal_size) {
  WalHeader h;
  if (wal_size < wal::kHeaderSize) return h;
  unsigned char b[wal::kHeaderSize];
  if (auto r = ReadAt(wal, b, sizeof(b), 0, "the WAL header"); !r.ok()) {
    return r.error();
  }
  const uint32_t magic = wal::LoadBig32(b);
  const uint32_t page_size = wal::LoadBig32(b + 8);
  if ((magic & ~1u) != wal::kMagicLittleEndian ||
      wal::LoadBig32(b + 4) != kWalFormatVersion || page_size < 512 ||
      page_size > 65536 || (page_size & (page_size - 1)) != 0) {
    return h;
  }
  h.big_endian = magic & 1u;
  wal::Checksum(h.big_endian, b, 24, h.checksum);
  if (h.checksum[0] != wal::LoadBig32(b + 24) ||
      h.checksum[1] != wal::LoadBig32(b + 28)) {
    return h;
  }
  h.valid = true;
  h.page_size = page_size;
  h.salt1 = wal::LoadBig32(b + 16);
  h.salt2 = wal::LoadBig32(b + 20);
  return h;
}

int64_t FrameOffset(const WalHeader& h, uint32_t frame) {
  return wal::kHeaderSize +
         int64_t{frame - 1} * (wal::kFrameHeaderSize + int64_t{h.page_size});
}

struct Commit {
  uint32_t frame = 0;     // 0: none
  uint32_t db_pages = 0;  // the database's size after it
};

// The last commit frame reachable along the checksum chain: what SQLite's
// recovery finds when it opens the WAL.
Result<Commit> FindLastCommit(sqlite3_file* wal, const WalHeader& h,
                              int64_t wal_size) {
  Commit last;
  const size_t stride = wal::kFrameHeaderSize + h.page_size;
  const auto frames = static_cast<uint32_t>(
      std::max<int64_t>(0, wal_size - wal::kHeaderSize) /
      static_cast<int64_t>(stride));
  constexpr uint32_t kBatch = 32;
  std::vector<unsigned char> batch(kBatch * stride);
  uint32_t sum[2] = {h.checksum[0], h.checksum[1]};
  for (uint32_t first = 1; first <= frames; first += kBatch) {
    const uint32_t count = std::min(kBatch, frames - first + 1);
    if (auto r = ReadAt(wal, batch.data(), static_cast<int>(count * stride),
                        FrameOffset(h, first), "WAL frames");
        !r.ok()) {
      return r.error();
    }
    for (uint32_t k = 0; k < count; ++k) {
      const unsigned char* fh = batch.data() + k * stride;
      wal::Checksum(h.big_endian, fh, 8, sum);
      wal::Checksum(h.big_endian, fh + wal::kFrameHeaderSize, h.page_size,
                    sum);
      if (wal::LoadBig32(fh) == 0 || wal::LoadBig32(fh + 8) != h.salt1 ||
          wal::LoadBig32(fh + 12) != h.salt2 ||
          sum[0] != wal::LoadBig32(fh + 16) ||
          sum[1] != wal::LoadBig32(fh + 20)) {
        return last;  // the chain ends here
      }
      if (const uint32_t pages = wal::LoadBig32(fh + 4); pages != 0) {
        last = {first + k, pages};
      }
    }
  }
  return last;
}

// The database size recorded in the commit frame `frame`.
Result<uint32_t> CommitPages(sqlite3_file* wal, const WalHeader& h,
                             uint32_t frame) {
  unsigned char fh[wal::kFrameHeaderSize];
  if (auto r = ReadAt(wal, fh, sizeof(fh), FrameOffset(h, frame),
                      "a WAL frame header");
      !r.ok()) {
    return r.error();
  }
  const uint32_t pages = wal::LoadBig32(fh + 4);
  if (pages == 0) {
    return Error{ErrorCode::kIoError,
                 "WAL frame " + std::to_string(frame) +
                     ", the last commit the shim saw, is not a commit frame"};
  }
  return pages;
}

Result<Ok> PinRollback(Database& db, ExclusivePoint* at) {
  db.SetWalGuard(0);
  auto header = ReadDbHeader(at->main.get());
  if (!header.ok()) return header.error();
  at->point = db.PinRollbackPoint(header.value().change_counter,
                                  header.value().pages,
                                  header.value().page_size);
  return Ok{};
}

Result<Ok> PinWal(Database& db, const CommittedState& c, ExclusivePoint* at) {
  BaseFile wal;
  auto opened = BaseFile::OpenReadOnly(db.base_vfs(), db.path() + "-wal",
                                       SQLITE_OPEN_WAL);
  if (opened.ok()) {
    wal = std::move(opened.value());
  } else if (opened.error().code != ErrorCode::kNotFound) {
    return opened.error();
  }
  const int64_t wal_size = wal.Size();
  WalHeader h;
  if (wal.get() != nullptr) {
    auto read = ReadWalHeader(wal.get(), wal_size);
    if (!read.ok()) return read.error();
    h = read.value();
  }
  Commit commit;
  Position position = c.position;
  if (c.known) {
    // A WAL with other salts was restarted since the last commit, which
    // SQLite does only once every frame is in the database file; no WAL, or
    // no valid header, likewise (truncated or deleted after a checkpoint).
    if (h.valid && c.position.mx_frame > 0 && h.salt1 == c.position.salt1 &&
        h.salt2 == c.position.salt2) {
      auto pages = CommitPages(wal.get(), h, c.position.mx_frame);
      if (!pages.ok()) return pages.error();
      commit = {c.position.mx_frame, pages.value()};
    }
  } else {
    // No commit seen since the host opened the database: the host's state
    // is what its recovery found, the same chain read the same way.
    if (h.valid) {
      auto last = FindLastCommit(wal.get(), h, wal_size);
      if (!last.ok()) return last.error();
      commit = last.value();
    }
    position = Position{};
    position.wal = true;
    position.salt1 = h.salt1;
    position.salt2 = h.salt2;
    position.mx_frame = commit.frame;
  }
  at->point.generation = c.generation;
  at->point.position = position;
  if (commit.frame == 0) {
    db.SetWalGuard(0);  // the WAL is not read: the host may do as it likes
    auto header = ReadDbHeader(at->main.get());
    if (!header.ok()) return header.error();
    at->point.page_size = header.value().page_size;
    at->point.db_pages = header.value().pages;
    return Ok{};
  }
  at->wal_bytes = FrameOffset(h, commit.frame + 1);
  db.SetWalGuard(static_cast<uint64_t>(at->wal_bytes));
  at->wal_cut = commit.frame;
  at->point.page_size = h.page_size;
  at->point.db_pages = commit.db_pages;
  at->wal = std::move(wal);
  return Ok{};
}

Result<Ok> Pin(Database& db, ExclusivePoint* at,
               Clock::time_point deadline) {
  CommittedState c = db.Committed();
  // A commit with every frame written but not yet complete: with no
  // position to go by it would look committed in the WAL while its
  // generation is still to come. Completing takes no write, so it does not
  // wait at the gate: wait for it.
  while (c.wal && !c.known && c.commit_in_flight) {
    if (Clock::now() >= deadline) return TimeoutError("a commit under way");
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
    c = db.Committed();
  }
  auto pinned = c.wal ? PinWal(db, c, at) : PinRollback(db, at);
  if (!pinned.ok()) return pinned;
  at->db_bytes = at->main.Size();
  return Ok{};
}

}  // namespace

Result<ExclusivePoint> ReachExclusivePoint(Database& db,
                                           Clock::time_point drain_deadline,
                                           Clock::time_point closed_until) {
  ExclusivePoint at;
  // Opening takes no lock and writes nothing: done before the gate shuts.
  auto main = BaseFile::OpenReadOnly(db.base_vfs(), db.path(),
                                     SQLITE_OPEN_MAIN_DB);
  if (!main.ok()) return main.error();
  at.main = std::move(main.value());
  auto token = db.CloseGate(Drain::kExclusiveWrites,
                            /*readers_may_proceed=*/true, drain_deadline,
                            closed_until);
  if (!token.ok()) return token.error();
  at.token = token.value();
  if (auto pinned = Pin(db, &at, drain_deadline); !pinned.ok()) {
    db.ReopenGate(at.token);
    return pinned.error();
  }
  return at;
}

}  // namespace quiesce
