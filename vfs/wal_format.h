// The on-disk and shared-memory layouts of SQLite's WAL that the shim reads.
// See wal.c: WalIndexHdr (two copies at the start of the wal-index, in
// native byte order) and the WAL frame header (big-endian).
#ifndef QUIESCE_VFS_WAL_FORMAT_H_
#define QUIESCE_VFS_WAL_FORMAT_H_

#include <cstddef>
#include <cstdint>
#include <atomic>
#include <cstring>

namespace quiesce::wal {

inline constexpr int kWriteLock = 0;
inline constexpr int kCkptLock = 1;
inline constexpr int kRecoverLock = 2;
inline constexpr int kReadLock0 = 3;
inline constexpr int kNumLocks = 8;

inline constexpr int kHeaderSize = 32;       // WAL file header
inline constexpr int kFrameHeaderSize = 24;  // per frame, before the page
inline constexpr int kIndexHdrSize = 48;     // one copy of WalIndexHdr

// The fields of WalIndexHdr the shim uses.
struct IndexHeader {
  uint32_t change = 0;     // iChange
  uint32_t page_size = 0;  // szPage decoded (1 means 65536)
  uint32_t mx_frame = 0;
  uint32_t n_page = 0;
  uint32_t salt1 = 0;
  uint32_t salt2 = 0;
  uint32_t n_backfill = 0;  // from the checkpoint info after the header
};

inline uint32_t LoadNative32(const unsigned char* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

inline uint32_t LoadBig32(const unsigned char* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) |
         (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

inline constexpr uint32_t kMagicLittleEndian = 0x377f0682;  // checksums LE
inline constexpr uint32_t kMagicBigEndian = 0x377f0683;

// SQLite's WAL checksum (walChecksumBytes): runs over 8-byte steps of
// `data`, continuing from s[0], s[1]; words read in the WAL's byte order.
inline void Checksum(bool big_endian, const unsigned char* data, size_t size,
                     uint32_t s[2]) {
  uint32_t s1 = s[0], s2 = s[1];
  for (size_t i = 0; i + 8 <= size; i += 8) {
    uint32_t x0, x1;
    if (big_endian) {
      x0 = LoadBig32(data + i);
      x1 = LoadBig32(data + i + 4);
    } else {
      std::memcpy(&x0, data + i, 4);
      std::memcpy(&x1, data + i + 4, 4);
    }
    s1 += x0 + s2;
    s2 += x1 + s1;
  }
  s[0] = s1;
  s[1] = s2;
}

// Reads the wal-index header from the first shared-memory region. Returns
// false when the two copies differ (a writer is mid-update) or the index is
// not initialised. Safe to call without a lock: it only copies.
inline bool ReadIndexHeader(const volatile void* region0, IndexHeader* out) {
  unsigned char copy[2 * kIndexHdrSize + 4];
  // One bulk copy (as SQLite itself copies the header); the two copies'
  // comparison catches a writer caught mid-update.
  std::atomic_signal_fence(std::memory_order_seq_cst);
  std::memcpy(copy, const_cast<const void*>(region0), sizeof(copy));
  std::atomic_signal_fence(std::memory_order_seq_cst);
  if (std::memcmp(copy, copy + kIndexHdrSize, kIndexHdrSize) != 0) {
    return false;
  }
  if (copy[12] != 1) return false;  // isInit
  uint16_t sz;
  std::memcpy(&sz, copy + 14, 2);
  out->change = LoadNative32(copy + 8);
  out->page_size = sz == 1 ? 65536u : sz;
  out->mx_frame = LoadNative32(copy + 16);
  out->n_page = LoadNative32(copy + 20);
  // aSalt holds the WAL header's bytes verbatim: big-endian.
  out->salt1 = LoadBig32(copy + 32);
  out->salt2 = LoadBig32(copy + 36);
  out->n_backfill = LoadNative32(copy + 2 * kIndexHdrSize);
  return true;
}

// The header's iChange, which every commit increments: a cheap test of
// whether anything was committed since it was last read.
inline uint32_t ReadChangeCounter(const volatile void* region0) {
  return static_cast<const volatile uint32_t*>(region0)[2];
}

}  // namespace quiesce::wal

#endif  // QUIESCE_VFS_WAL_FORMAT_H_
