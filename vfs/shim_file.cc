// The shim's io methods. Each forwards to the wrapped file; main-database,
// WAL and journal handles also feed the database's lock table and commit
// tracking. Nothing here opens or closes a file behind the base VFS's back.
#include "shim_file.h"

#include <cstring>
#include <new>
#include <string_view>

#include "ascii.h"
#include "pragma_status.h"
#include "untracked.h"

namespace quiesce {

namespace {
thread_local bool t_opening_own = false;
}  // namespace

void SetOpeningOwnConnection(bool opening) { t_opening_own = opening; }
bool OpeningOwnConnection() { return t_opening_own; }

namespace {

ShimFile* Shim(sqlite3_file* file) { return reinterpret_cast<ShimFile*>(file); }
sqlite3_file* Real(sqlite3_file* file) { return Shim(file)->real(); }

uint32_t Big32(const void* p) {
  return wal::LoadBig32(static_cast<const unsigned char*>(p));
}

uint32_t DecodePageSize(const unsigned char* p) {
  const uint32_t v = (uint32_t{p[0]} << 8) | p[1];
  return v == 1 ? 65536u : v;
}

// --- io methods, in the order of sqlite3_io_methods -----------------------

int ShimClose(sqlite3_file* file) {
  ShimFile* f = Shim(file);
  sqlite3_file* real = f->real();
  const int rc = real->pMethods ? real->pMethods->xClose(real) : SQLITE_OK;
  NoteFdClosed(f->fd);
  if (f->kind == FileKind::kMainDb) {
    f->db->RemoveHandle(f);
    f->context->DetachMain(f->db.get(), f->own);
  }
  f->~ShimFile();
  return rc;
}

int ShimRead(sqlite3_file* file, void* buf, int amt, sqlite3_int64 offset) {
  ShimFile* f = Shim(file);
  sqlite3_file* real = f->real();
  const int rc = real->pMethods->xRead(real, buf, amt, offset);
  // Rollback mode: SQLite reads the change counter (bytes 24..27) at the
  // start of every read transaction; a change we did not make is a foreign
  // commit. No extra I/O: only what SQLite read anyway is looked at.
  if (rc == SQLITE_OK && f->kind == FileKind::kMainDb && offset == 0 &&
      amt >= 20) {
    f->db->OnFileFormatSeen(static_cast<const unsigned char*>(buf)[18]);
  }
  if (rc == SQLITE_OK && f->kind == FileKind::kMainJournal && offset == 0 &&
      amt >= 8) {
    f->db->OnJournalHeaderRead();
  }
  if (rc == SQLITE_OK && f->kind == FileKind::kMainDb && offset <= 24 &&
      offset + amt >= 28) {
    f->db->OnRollbackHeaderSeen(
        Big32(static_cast<const unsigned char*>(buf) + (24 - offset)));
  }
  return rc;
}

void SnoopMainWrite(ShimFile* f, const void* buf, int amt,
                    sqlite3_int64 offset) {
  if (offset != 0 || amt < 32) return;
  const auto* p = static_cast<const unsigned char*>(buf);
  f->page1_written = true;
  f->page1_counter = Big32(p + 24);
  f->page1_pages = Big32(p + 28);
  f->db->SetPageSize(DecodePageSize(p + 16));
}

void SnoopWalWrite(ShimFile* f, const void* buf, int amt,
                   sqlite3_int64 offset) {
  const auto* p = static_cast<const unsigned char*>(buf);
  if (offset == 0 && amt >= wal::kHeaderSize) {
    f->wal_page_size = Big32(p + 8);
    f->wal_salt1 = Big32(p + 16);
    f->wal_salt2 = Big32(p + 20);
    return;
  }
  // A commit frame's header (non-zero "db size after commit"). In WAL with
  // a wal-index the commit is decided at the WRITE unlock instead; this is
  // for exclusive locking mode, where no wal-index calls are made.
  if (amt != wal::kFrameHeaderSize || offset < wal::kHeaderSize) return;
  const uint32_t commit_pages = Big32(p + 4);
  if (commit_pages == 0) return;
  if (f->wal_page_size == 0) {
    unsigned char hdr[wal::kHeaderSize];
    sqlite3_file* real = f->real();
    if (real->pMethods->xRead(real, hdr, sizeof(hdr), 0) != SQLITE_OK) return;
    f->wal_page_size = Big32(hdr + 8);
    f->wal_salt1 = Big32(hdr + 16);
    f->wal_salt2 = Big32(hdr + 20);
  }
  if (f->wal_page_size == 0) return;
  const sqlite3_int64 stride = f->wal_page_size + wal::kFrameHeaderSize;
  if ((offset - wal::kHeaderSize) % stride != 0) return;
  const auto frame =
      static_cast<uint32_t>((offset - wal::kHeaderSize) / stride + 1);
  f->db->OnWalFrameHeaderWritten(frame, commit_pages, Big32(p + 8),
                                 Big32(p + 12));
}

// Exclusive locking mode: the host's writes to the database file and its
// WAL pass the write gate (Database::BeginExclusiveWrite). Elsewhere a
// relaxed load and a branch.
class WriteGatePass {
 public:
  WriteGatePass(ShimFile* f, sqlite3_int64 offset)
      : db_((f->kind == FileKind::kMainDb || f->kind == FileKind::kWal) &&
                    !f->own && f->db->exclusive_writes()
                ? f->db.get()
                : nullptr),
        target_(f->kind == FileKind::kWal ? WriteTarget::kWal
                                          : WriteTarget::kMain) {
    if (db_ != nullptr) db_->BeginExclusiveWrite(target_, offset);
  }
  void Done(int rc) {
    if (db_ != nullptr) db_->EndExclusiveWrite(target_, rc == SQLITE_OK);
    db_ = nullptr;
  }
  ~WriteGatePass() { Done(SQLITE_IOERR); }
  WriteGatePass(const WriteGatePass&) = delete;
  WriteGatePass& operator=(const WriteGatePass&) = delete;

 private:
  Database* db_;
  const WriteTarget target_;
};

int ShimWrite(sqlite3_file* file, const void* buf, int amt,
              sqlite3_int64 offset) {
  ShimFile* f = Shim(file);
  sqlite3_file* real = f->real();
  WriteGatePass pass(f, offset);
  const int rc = real->pMethods->xWrite(real, buf, amt, offset);
  pass.Done(rc);
  if (rc != SQLITE_OK || f->kind == FileKind::kOther) return rc;
  f->db->counters().bytes_written.fetch_add(static_cast<uint64_t>(amt),
                                            std::memory_order_relaxed);
  switch (f->kind) {
    case FileKind::kMainDb:
      f->db->OnMainWritten();
      SnoopMainWrite(f, buf, amt, offset);
      break;
    case FileKind::kWal:
      SnoopWalWrite(f, buf, amt, offset);
      break;
    case FileKind::kOther:
      break;
    case FileKind::kMainJournal: {
      // PERSIST (and every rollback mode under exclusive locking) ends a
      // journal by zeroing its header.
      static constexpr unsigned char kZero[28] = {};
      if (offset == 0 && amt == 28 &&
          std::memcmp(buf, kZero, sizeof(kZero)) == 0) {
        f->db->OnJournalFinalized(JournalMode::kPersist);
      } else {
        f->db->OnJournalWritten();
      }
      break;
    }
  }
  return rc;
}

int ShimTruncate(sqlite3_file* file, sqlite3_int64 size) {
  ShimFile* f = Shim(file);
  sqlite3_file* real = f->real();
  WriteGatePass pass(f, size);
  const int rc = real->pMethods->xTruncate(real, size);
  pass.Done(rc);
  if (rc == SQLITE_OK && size == 0 && f->kind == FileKind::kMainJournal) {
    f->db->OnJournalFinalized(JournalMode::kTruncate);
  }
  return rc;
}

int ShimSync(sqlite3_file* file, int flags) {
  ShimFile* f = Shim(file);
  sqlite3_file* real = f->real();
  const int rc = real->pMethods->xSync(real, flags);
  if (rc == SQLITE_OK && f->kind != FileKind::kOther) {
    f->db->counters().syncs.fetch_add(1, std::memory_order_relaxed);
  }
  return rc;
}

int ShimFileSize(sqlite3_file* file, sqlite3_int64* size) {
  sqlite3_file* real = Real(file);
  return real->pMethods->xFileSize(real, size);
}

int ShimLock(sqlite3_file* file, int level) {
  ShimFile* f = Shim(file);
  sqlite3_file* real = f->real();
  if (f->kind != FileKind::kMainDb) return real->pMethods->xLock(real, level);
  Database& db = *f->db;
  MutexLock lock(&db.mu);
  f->LockedBy(db);
  // The gate check, the base's lock and the table update happen under one
  // mutex: a drain can never miss a lock taken past an open gate. A wait
  // for quiesce's own lock releases the mutex, so each try is admitted
  // anew; one max_stall bounds all the waits of the request.
  const auto deadline = Database::Clock::now() + db.max_stall();
  int rc;
  do {
    db.AdmitLock(f, level, deadline);
    rc = real->pMethods->xLock(real, level);
  } while (rc == SQLITE_BUSY && db.AwaitOwnLockRelease(f, level, deadline));
  if (rc == SQLITE_OK) {
    f->lock_level = level;
    db.OnLocksChanged(f);
  }
  return rc;
}

int ShimUnlock(sqlite3_file* file, int level) {
  ShimFile* f = Shim(file);
  sqlite3_file* real = f->real();
  if (f->kind != FileKind::kMainDb) return real->pMethods->xUnlock(real, level);
  MutexLock lock(&f->db->mu);
  const int rc = real->pMethods->xUnlock(real, level);
  if (rc == SQLITE_OK && level < f->lock_level) {
    if (f->lock_level > SQLITE_LOCK_SHARED) f->db->OnMainUnlocked();
    f->lock_level = level;
    f->db->OnLocksChanged(f);
  }
  return rc;
}

int ShimCheckReservedLock(sqlite3_file* file, int* out) {
  sqlite3_file* real = Real(file);
  return real->pMethods->xCheckReservedLock(real, out);
}

// "PRAGMA locking_mode=exclusive" is the one way a connection asks for
// exclusive locking; SQLite tells the VFS about every PRAGMA first.
void ObservePragma(ShimFile* f, char** args) {
  if (args[1] == nullptr || args[2] == nullptr) return;
  if (EqualsIgnoreCase(args[1], "foreign_keys") && !f->own) {
    const std::string_view v = args[2];
    f->db->SetHostForeignKeys(EqualsIgnoreCase(v, "on") || v == "1" ||
                              EqualsIgnoreCase(v, "true") ||
                              EqualsIgnoreCase(v, "yes"));
  }
  if (EqualsIgnoreCase(args[1], "locking_mode")) {
    if (EqualsIgnoreCase(args[2], "exclusive")) {
      f->db->SetLockingMode(LockingMode::kExclusive);
    } else if (EqualsIgnoreCase(args[2], "normal")) {
      f->db->SetLockingMode(LockingMode::kNormal);
    }
  }
}

int ShimFileControl(sqlite3_file* file, int op, void* arg) {
  ShimFile* f = Shim(file);
  sqlite3_file* real = f->real();
  if (op == SQLITE_FCNTL_PRAGMA && f->kind == FileKind::kMainDb) {
    char** args = static_cast<char**>(arg);
    if (IsStatusPragma(args[1])) {
      return AnswerStatusPragma(*f->db, f->context->api(), args);
    }
    ObservePragma(f, args);
  }
  int rc = real->pMethods->xFileControl(real, op, arg);
  if (op == SQLITE_FCNTL_VFSNAME && rc == SQLITE_OK) {
    char** name = static_cast<char**>(arg);
    const SqliteApi& api = f->context->api();
    char* prefixed = api.mprintf(*name ? "quiesce/%s" : "quiesce", *name);
    if (prefixed != nullptr) {
      api.free(*name);
      *name = prefixed;
    }
  } else if (op == SQLITE_FCNTL_COMMIT_PHASETWO &&
             f->kind == FileKind::kMainDb &&
             (rc == SQLITE_OK || rc == SQLITE_NOTFOUND)) {
    f->db->OnCommitPhaseTwo(f);
  }
  return rc;
}

int ShimSectorSize(sqlite3_file* file) {
  sqlite3_file* real = Real(file);
  return real->pMethods->xSectorSize(real);
}

int ShimDeviceCharacteristics(sqlite3_file* file) {
  sqlite3_file* real = Real(file);
  return real->pMethods->xDeviceCharacteristics(real);
}

int ShimShmMap(sqlite3_file* file, int page, int page_size, int extend,
               void volatile** out) {
  ShimFile* f = Shim(file);
  sqlite3_file* real = f->real();
  const int rc = real->pMethods->xShmMap(real, page, page_size, extend, out);
  if (rc == SQLITE_OK && page == 0 && *out != nullptr &&
      f->kind == FileKind::kMainDb) {
    MutexLock lock(&f->db->mu);
    f->shm0 = *out;
  }
  return rc;
}

// `db` is *f->db, passed so that -Wthread-safety can see which mutex the
// caller holds (it cannot follow f->db through the caller's reference).
void TrackShmLock([[maybe_unused]] Database& db, ShimFile* f, int offset,
                  int n, int flags)
    QUIESCE_REQUIRES(db.mu) {
  f->LockedBy(db);
  const auto mask = static_cast<uint8_t>(((1u << n) - 1u) << offset);
  if (flags & SQLITE_SHM_UNLOCK) {
    f->shm_shared &= static_cast<uint8_t>(~mask);
    f->shm_exclusive &= static_cast<uint8_t>(~mask);
    if (offset == wal::kWriteLock) {
      f->recovering = false;
      f->write_hdr_valid = false;
    }
    return;
  }
  if (flags & SQLITE_SHM_EXCLUSIVE) {
    f->shm_exclusive |= mask;
  } else {
    f->shm_shared |= mask;
  }
}

int ShimShmLock(sqlite3_file* file, int offset, int n, int flags) {
  ShimFile* f = Shim(file);
  sqlite3_file* real = f->real();
  if (f->kind != FileKind::kMainDb) {
    return real->pMethods->xShmLock(real, offset, n, flags);
  }
  Database& db = *f->db;
  MutexLock lock(&db.mu);
  f->LockedBy(db);
  const bool unlock = (flags & SQLITE_SHM_UNLOCK) != 0;
  const bool exclusive = (flags & SQLITE_SHM_EXCLUSIVE) != 0;
  const bool covers_write = offset == wal::kWriteLock;
  if (unlock && covers_write && (f->shm_exclusive & 1u)) {
    // Decide before the unlock: until then no one else can commit.
    db.OnWalWriteUnlocking(f);
  }
  // As in ShimLock: admitted anew after every wait for quiesce's own lock.
  const auto deadline = Database::Clock::now() + db.max_stall();
  int rc;
  do {
    db.AdmitShmLock(f, offset, n, flags, deadline);
    rc = real->pMethods->xShmLock(real, offset, n, flags);
  } while (rc == SQLITE_BUSY &&
           db.AwaitOwnShmRelease(f, offset, n, flags, deadline));
  if (rc != SQLITE_OK) return rc;
  TrackShmLock(db, f, offset, n, flags);
  db.OnLocksChanged(f);
  if (unlock) return rc;
  if (exclusive) {
    if (covers_write) db.OnWalWriteLocked(f);
    if (offset <= wal::kRecoverLock && wal::kRecoverLock < offset + n &&
        (f->shm_exclusive & 1u)) {
      f->recovering = true;
    }
    if (offset == wal::kCkptLock && n == 1) {
      db.counters().checkpoints.fetch_add(1, std::memory_order_relaxed);
    }
  } else if (offset >= wal::kReadLock0 && n == 1) {
    db.OnWalReadLocked(f);
  }
  return rc;
}

void ShimShmBarrier(sqlite3_file* file) {
  sqlite3_file* real = Real(file);
  real->pMethods->xShmBarrier(real);
}

int ShimShmUnmap(sqlite3_file* file, int delete_flag) {
  ShimFile* f = Shim(file);
  sqlite3_file* real = f->real();
  if (f->kind == FileKind::kMainDb) {
    MutexLock lock(&f->db->mu);
    f->shm0 = nullptr;
  }
  return real->pMethods->xShmUnmap(real, delete_flag);
}

int ShimFetch(sqlite3_file* file, sqlite3_int64 offset, int amt, void** out) {
  sqlite3_file* real = Real(file);
  return real->pMethods->xFetch(real, offset, amt, out);
}

int ShimUnfetch(sqlite3_file* file, sqlite3_int64 offset, void* p) {
  sqlite3_file* real = Real(file);
  return real->pMethods->xUnfetch(real, offset, p);
}

constexpr sqlite3_io_methods MakeMethods(int version) {
  return sqlite3_io_methods{
      version,                    /* iVersion */
      ShimClose,                  /* xClose */
      ShimRead,                   /* xRead */
      ShimWrite,                  /* xWrite */
      ShimTruncate,               /* xTruncate */
      ShimSync,                   /* xSync */
      ShimFileSize,               /* xFileSize */
      ShimLock,                   /* xLock */
      ShimUnlock,                 /* xUnlock */
      ShimCheckReservedLock,      /* xCheckReservedLock */
      ShimFileControl,            /* xFileControl */
      ShimSectorSize,             /* xSectorSize */
      ShimDeviceCharacteristics,  /* xDeviceCharacteristics */
      ShimShmMap,                 /* xShmMap */
      ShimShmLock,                /* xShmLock */
      ShimShmBarrier,             /* xShmBarrier */
      ShimShmUnmap,               /* xShmUnmap */
      ShimFetch,                  /* xFetch */
      ShimUnfetch,                /* xUnfetch */
  };
}

constexpr sqlite3_io_methods kMethods[3] = {MakeMethods(1), MakeMethods(2),
                                            MakeMethods(3)};

// --- attached files: the caller's AttachedFile points to the ShimFile -----
// Each method is the registered one, called on the ShimFile: one load more
// per call, and the same code for both paths.

ShimFile* Outer(sqlite3_file* file) {
  return reinterpret_cast<AttachedFile*>(file)->shim;
}

template <auto Method, typename... Args>
auto Via(sqlite3_file* file, Args... args) {
  return Method(&Outer(file)->base, args...);
}

int AttachedClose(sqlite3_file* file) {
  ShimFile* f = Outer(file);
  const int rc = ShimClose(&f->base);  // destroys the ShimFile
  FreeAttachedStorage(f);
  reinterpret_cast<AttachedFile*>(file)->shim = nullptr;
  return rc;
}

constexpr sqlite3_io_methods MakeAttachedMethods(int version) {
  return sqlite3_io_methods{
      version,                                   /* iVersion */
      AttachedClose,                             /* xClose */
      Via<ShimRead, void*, int, sqlite3_int64>,  /* xRead */
      Via<ShimWrite, const void*, int, sqlite3_int64>,  /* xWrite */
      Via<ShimTruncate, sqlite3_int64>,          /* xTruncate */
      Via<ShimSync, int>,                        /* xSync */
      Via<ShimFileSize, sqlite3_int64*>,         /* xFileSize */
      Via<ShimLock, int>,                        /* xLock */
      Via<ShimUnlock, int>,                      /* xUnlock */
      Via<ShimCheckReservedLock, int*>,          /* xCheckReservedLock */
      Via<ShimFileControl, int, void*>,          /* xFileControl */
      Via<ShimSectorSize>,                       /* xSectorSize */
      Via<ShimDeviceCharacteristics>,            /* xDeviceCharacteristics */
      Via<ShimShmMap, int, int, int, void volatile**>,  /* xShmMap */
      Via<ShimShmLock, int, int, int>,           /* xShmLock */
      Via<ShimShmBarrier>,                       /* xShmBarrier */
      Via<ShimShmUnmap, int>,                    /* xShmUnmap */
      Via<ShimFetch, sqlite3_int64, int, void**>,  /* xFetch */
      Via<ShimUnfetch, sqlite3_int64, void*>,    /* xUnfetch */
  };
}

constexpr sqlite3_io_methods kAttachedMethods[3] = {
    MakeAttachedMethods(1), MakeAttachedMethods(2), MakeAttachedMethods(3)};

bool IsAttached(const sqlite3_file* file) {
  for (const sqlite3_io_methods& m : kAttachedMethods) {
    if (file->pMethods == &m) return true;
  }
  return false;
}

}  // namespace

ShimFile* ShimFileOf(sqlite3_file* file) {
  if (file == nullptr) return nullptr;
  return IsAttached(file) ? Outer(file) : Shim(file);
}

void* AllocateAttachedStorage(int real_size) {
  const size_t bytes = ShimFile::RealOffset() + static_cast<size_t>(real_size);
  const size_t words =
      (bytes + sizeof(std::max_align_t) - 1) / sizeof(std::max_align_t);
  return new (std::nothrow) std::max_align_t[words]();
}

void FreeAttachedStorage(void* storage) {
  delete[] static_cast<std::max_align_t*>(storage);
}

const sqlite3_io_methods* AttachedIoMethods(int version) {
  if (version < 1) version = 1;
  if (version > 3) version = 3;
  return &kAttachedMethods[version - 1];
}

const sqlite3_io_methods* ShimIoMethods(int version) {
  if (version < 1) version = 1;
  if (version > 3) version = 3;
  return &kMethods[version - 1];
}

}  // namespace quiesce
