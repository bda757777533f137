#include "fault_vfs.h"

#include <sqlite3.h>

#include <algorithm>
#include <cstring>

namespace quiesce::fuzz {
namespace {

struct Armed {
  Fault fault = Fault::kNone;
  uint32_t countdown = 0;  // matching calls to let through first
  bool persistent = false;
  bool spent = false;      // a one-shot fault that already fired
  uint32_t fired = 0;
};
Armed g_armed;

sqlite3_vfs* g_base = nullptr;
sqlite3_vfs g_vfs;

// The wrapped file lives right after ours, in the same allocation.
struct FaultFile {
  sqlite3_file base;
  sqlite3_file* real() { return reinterpret_cast<sqlite3_file*>(this + 1); }
};

sqlite3_file* Real(sqlite3_file* f) {
  return reinterpret_cast<FaultFile*>(f)->real();
}

// Whether this call of kind `op` fails now.
bool Hit(Fault op) {
  Armed& a = g_armed;
  const bool matches =
      a.fault == op ||
      // A write is a write: a full disk and an I/O error share the counter.
      (op == Fault::kWriteError && a.fault == Fault::kDiskFull) ||
      (op == Fault::kReadError && a.fault == Fault::kShortRead);
  if (!matches || a.spent) return false;
  if (a.countdown > 0) {
    --a.countdown;
    return false;
  }
  if (!a.persistent) a.spent = true;
  ++a.fired;
  return true;
}

int Close(sqlite3_file* f) { return Real(f)->pMethods->xClose(Real(f)); }

int Read(sqlite3_file* f, void* buf, int amt, sqlite3_int64 off) {
  if (Hit(Fault::kReadError)) {
    if (g_armed.fault == Fault::kReadError) return SQLITE_IOERR_READ;
    const int rc = Real(f)->pMethods->xRead(Real(f), buf, amt / 2, off);
    if (rc != SQLITE_OK && rc != SQLITE_IOERR_SHORT_READ) return rc;
    std::memset(static_cast<char*>(buf) + amt / 2, 0,
                static_cast<size_t>(amt - amt / 2));
    return SQLITE_IOERR_SHORT_READ;
  }
  return Real(f)->pMethods->xRead(Real(f), buf, amt, off);
}

int Write(sqlite3_file* f, const void* buf, int amt, sqlite3_int64 off) {
  if (Hit(Fault::kWriteError)) {
    return g_armed.fault == Fault::kDiskFull ? SQLITE_FULL : SQLITE_IOERR_WRITE;
  }
  return Real(f)->pMethods->xWrite(Real(f), buf, amt, off);
}

int Truncate(sqlite3_file* f, sqlite3_int64 size) {
  if (Hit(Fault::kTruncateError)) return SQLITE_IOERR_TRUNCATE;
  return Real(f)->pMethods->xTruncate(Real(f), size);
}

int Sync(sqlite3_file* f, int flags) {
  if (Hit(Fault::kSyncError)) return SQLITE_IOERR_FSYNC;
  return Real(f)->pMethods->xSync(Real(f), flags);
}

int FileSize(sqlite3_file* f, sqlite3_int64* size) {
  return Real(f)->pMethods->xFileSize(Real(f), size);
}
int Lock(sqlite3_file* f, int level) {
  return Real(f)->pMethods->xLock(Real(f), level);
}
int Unlock(sqlite3_file* f, int level) {
  return Real(f)->pMethods->xUnlock(Real(f), level);
}
int CheckReservedLock(sqlite3_file* f, int* out) {
  return Real(f)->pMethods->xCheckReservedLock(Real(f), out);
}
int FileControl(sqlite3_file* f, int op, void* arg) {
  return Real(f)->pMethods->xFileControl(Real(f), op, arg);
}
int SectorSize(sqlite3_file* f) {
  return Real(f)->pMethods->xSectorSize(Real(f));
}
int DeviceCharacteristics(sqlite3_file* f) {
  return Real(f)->pMethods->xDeviceCharacteristics(Real(f));
}
int ShmMap(sqlite3_file* f, int region, int size, int extend,
           void volatile** out) {
  return Real(f)->pMethods->xShmMap(Real(f), region, size, extend, out);
}
int ShmLock(sqlite3_file* f, int offset, int n, int flags) {
  return Real(f)->pMethods->xShmLock(Real(f), offset, n, flags);
}
void ShmBarrier(sqlite3_file* f) { Real(f)->pMethods->xShmBarrier(Real(f)); }
int ShmUnmap(sqlite3_file* f, int delete_flag) {
  return Real(f)->pMethods->xShmUnmap(Real(f), delete_flag);
}
int Fetch(sqlite3_file* f, sqlite3_int64 off, int amt, void** out) {
  return Real(f)->pMethods->xFetch(Real(f), off, amt, out);
}
int Unfetch(sqlite3_file* f, sqlite3_int64 off, void* p) {
  return Real(f)->pMethods->xUnfetch(Real(f), off, p);
}

// One table per io_methods version, so that ours is never above the
// wrapped file's.
const sqlite3_io_methods* MethodsFor(int version) {
  static const sqlite3_io_methods kV3 = {
      3,                      // iVersion
      Close,                  // xClose
      Read,                   // xRead
      Write,                  // xWrite
      Truncate,               // xTruncate
      Sync,                   // xSync
      FileSize,               // xFileSize
      Lock,                   // xLock
      Unlock,                 // xUnlock
      CheckReservedLock,      // xCheckReservedLock
      FileControl,            // xFileControl
      SectorSize,             // xSectorSize
      DeviceCharacteristics,  // xDeviceCharacteristics
      ShmMap,                 // xShmMap
      ShmLock,                // xShmLock
      ShmBarrier,             // xShmBarrier
      ShmUnmap,               // xShmUnmap
      Fetch,                  // xFetch
      Unfetch,                // xUnfetch
  };
  static const sqlite3_io_methods kV2 = [] {
    sqlite3_io_methods m = kV3;
    m.iVersion = 2;
    m.xFetch = nullptr;
    m.xUnfetch = nullptr;
    return m;
  }();
  static const sqlite3_io_methods kV1 = [] {
    sqlite3_io_methods m = kV2;
    m.iVersion = 1;
    m.xShmMap = nullptr;
    m.xShmLock = nullptr;
    m.xShmBarrier = nullptr;
    m.xShmUnmap = nullptr;
    return m;
  }();
  return version >= 3 ? &kV3 : version == 2 ? &kV2 : &kV1;
}

int Open(sqlite3_vfs*, sqlite3_filename name, sqlite3_file* file, int flags,
         int* out_flags) {
  auto* f = reinterpret_cast<FaultFile*>(file);
  std::memset(static_cast<void*>(f->real()), 0,
              static_cast<size_t>(g_base->szOsFile));
  const int rc = g_base->xOpen(g_base, name, f->real(), flags, out_flags);
  if (rc != SQLITE_OK) {
    file->pMethods = nullptr;
    if (f->real()->pMethods) f->real()->pMethods->xClose(f->real());
    return rc;
  }
  file->pMethods = MethodsFor(f->real()->pMethods->iVersion);
  return rc;
}

int Delete(sqlite3_vfs*, const char* name, int sync_dir) {
  return g_base->xDelete(g_base, name, sync_dir);
}
int Access(sqlite3_vfs*, const char* name, int flags, int* out) {
  return g_base->xAccess(g_base, name, flags, out);
}
int FullPathname(sqlite3_vfs*, const char* name, int n, char* out) {
  return g_base->xFullPathname(g_base, name, n, out);
}
void* DlOpen(sqlite3_vfs*, const char* name) {
  return g_base->xDlOpen(g_base, name);
}
void DlError(sqlite3_vfs*, int n, char* out) {
  g_base->xDlError(g_base, n, out);
}
void (*DlSym(sqlite3_vfs*, void* handle, const char* symbol))(void) {
  return g_base->xDlSym(g_base, handle, symbol);
}
void DlClose(sqlite3_vfs*, void* handle) { g_base->xDlClose(g_base, handle); }
int Randomness(sqlite3_vfs*, int n, char* out) {
  return g_base->xRandomness(g_base, n, out);
}
int Sleep(sqlite3_vfs*, int us) { return g_base->xSleep(g_base, us); }
int CurrentTime(sqlite3_vfs*, double* out) {
  return g_base->xCurrentTime(g_base, out);
}
int GetLastError(sqlite3_vfs*, int n, char* out) {
  return g_base->xGetLastError(g_base, n, out);
}
int CurrentTimeInt64(sqlite3_vfs*, sqlite3_int64* out) {
  return g_base->xCurrentTimeInt64(g_base, out);
}

}  // namespace

int RegisterFaultVfs() {
  if (g_base != nullptr) return SQLITE_OK;
  sqlite3_vfs* base = sqlite3_vfs_find("unix");
  if (base == nullptr) return SQLITE_ERROR;
  g_base = base;
  g_vfs = sqlite3_vfs{};
  g_vfs.iVersion = std::min(base->iVersion, 2);
  g_vfs.szOsFile = static_cast<int>(sizeof(FaultFile)) + base->szOsFile;
  g_vfs.mxPathname = base->mxPathname;
  g_vfs.zName = kFaultVfsName;
  g_vfs.xOpen = Open;
  g_vfs.xDelete = Delete;
  g_vfs.xAccess = Access;
  g_vfs.xFullPathname = FullPathname;
  g_vfs.xDlOpen = DlOpen;
  g_vfs.xDlError = DlError;
  g_vfs.xDlSym = DlSym;
  g_vfs.xDlClose = DlClose;
  g_vfs.xRandomness = Randomness;
  g_vfs.xSleep = Sleep;
  g_vfs.xCurrentTime = CurrentTime;
  g_vfs.xGetLastError = GetLastError;
  g_vfs.xCurrentTimeInt64 = CurrentTimeInt64;
  return sqlite3_vfs_register(&g_vfs, 0);
}

void Arm(Fault fault, uint32_t after, bool persistent) {
  const uint32_t fired = g_armed.fired;
  g_armed = Armed{fault, after, persistent, false, fired};
}

void Disarm() { Arm(Fault::kNone, 0, false); }

uint32_t Fired() { return g_armed.fired; }
void ResetFired() { g_armed.fired = 0; }

}  // namespace quiesce::fuzz
