// The shim's sqlite3_file: SQLite sees `base`; the wrapped file of the base
// VFS lives in the same allocation, right after this struct.
//
// A shim attached in place (quiesce_attach) cannot count on room in its
// caller's allocation (the caller learnt szOsFile before the attach): the
// caller's file is an AttachedFile that points to a ShimFile of its own
// allocation, laid out as above.
#ifndef QUIESCE_VFS_SHIM_FILE_H_
#define QUIESCE_VFS_SHIM_FILE_H_

#include <cassert>
#include <cstddef>
#include <cstdint>
#include <chrono>
#include <memory>
#include <thread>

#include "context.h"
#include "database.h"
#include "sqlite_api.h"
#include "wal_format.h"

namespace quiesce {

// kOther: a file the shim wraps but does not track (no identity, or a WAL
// or journal whose database it does not know): every method passes through.
enum class FileKind : uint8_t { kOther, kMainDb, kWal, kMainJournal };

struct ShimFile {
  sqlite3_file base;                 // must stay first: SQLite's view
  Context* context;
  FileKind kind = FileKind::kOther;
  std::shared_ptr<Database> db;      // the database this file belongs to
  uint64_t handle_id = 0;
  bool own = false;                  // quiesce's own connection: never waits
  // The wrapped file's descriptor, when the base VFS is SQLite's unix VFS
  // (untracked.h tells the process's other descriptors apart by it); -1
  // when it cannot be told.
  int fd = -1;

  // Main-database handles, under db->mu (the thread-safety analysis checks
  // it): when and on which thread this handle went from holding no lock to
  // holding one (for the same-thread rule and for drain errors), and the
  // locks it holds.
  std::thread::id lock_thread QUIESCE_GUARDED_BY(db->mu);
  std::chrono::steady_clock::time_point held_since QUIESCE_GUARDED_BY(db->mu);
  int lock_level QUIESCE_GUARDED_BY(db->mu) = 0;       // SQLITE_LOCK_*
  // Bit per shm slot held shared, exclusive.
  uint8_t shm_shared QUIESCE_GUARDED_BY(db->mu) = 0;
  uint8_t shm_exclusive QUIESCE_GUARDED_BY(db->mu) = 0;
  // Took RECOVER while holding WRITE; write_hdr read when WRITE was taken.
  bool recovering QUIESCE_GUARDED_BY(db->mu) = false;
  bool write_hdr_valid QUIESCE_GUARDED_BY(db->mu) = false;
  wal::IndexHeader write_hdr QUIESCE_GUARDED_BY(db->mu);
  // Tells the thread-safety analysis that `owner.mu`, which the caller
  // holds, is db->mu (it cannot follow the db pointer from a Database's
  // own methods, or through a reference the caller took), so the fields
  // above may be used. Checked in debug builds.
  void LockedBy(const Database& owner) const QUIESCE_REQUIRES(owner.mu)
      QUIESCE_ASSERT_CAPABILITY(db->mu) {
    assert(db.get() == &owner);
  }
  // The first wal-index region, once mapped (in the -shm file or, for
  // unix-excl, in heap memory shared within the process).
  const volatile void* shm0 = nullptr;

  // Main-database handles in rollback mode: page 1 as last written by this
  // handle's transaction. Touched only by the connection owning the handle.
  bool page1_written = false;
  uint32_t page1_counter = 0;
  uint32_t page1_pages = 0;

  // WAL files: the header this handle last wrote or read (page size, salts).
  uint32_t wal_page_size = 0;
  uint32_t wal_salt1 = 0;
  uint32_t wal_salt2 = 0;

  static constexpr size_t RealOffset() {
    return (sizeof(ShimFile) + alignof(std::max_align_t) - 1) &
           ~(alignof(std::max_align_t) - 1);
  }
  sqlite3_file* real() {
    return reinterpret_cast<sqlite3_file*>(reinterpret_cast<char*>(this) +
                                           RealOffset());
  }
};

// The caller's file of an attached shim: all it holds is the pointer to
// the separate allocation (ShimFile and the real file after it).
struct AttachedFile {
  sqlite3_file base;   // must stay first: SQLite's view
  ShimFile* shim;      // allocated by the attached xOpen, freed by xClose
};

// The ShimFile behind a file the shim opened, registered or attached.
ShimFile* ShimFileOf(sqlite3_file* file);

// Storage for an attached file's ShimFile and, after it, a real file of
// real_size bytes, zeroed; null when out of memory. The attached xClose
// frees it (FreeAttachedStorage), as does a failed open.
void* AllocateAttachedStorage(int real_size);
void FreeAttachedStorage(void* storage);

// Set on a thread while it opens quiesce's own connection: the handles it
// opens are marked `own`.
void SetOpeningOwnConnection(bool opening);
bool OpeningOwnConnection();

// Method tables of version 1, 2 and 3; a file gets the one that matches its
// wrapped file's version.
const sqlite3_io_methods* ShimIoMethods(int version);
// The same for AttachedFile: each method follows the pointer and runs the
// registered method on the ShimFile; xClose also frees the allocation.
const sqlite3_io_methods* AttachedIoMethods(int version);

}  // namespace quiesce

#endif  // QUIESCE_VFS_SHIM_FILE_H_
