// The shim's sqlite3_vfs and its registration.
//
// VFS-level methods must not trust their pVfs argument: Gecko's base-vfs
// copies every method pointer of the VFS it wraps (except xOpen) into a
// struct of its own, so those methods are called with Gecko's sqlite3_vfs.
// Each registered shim therefore owns a slot, and its methods are the slot's
// own instantiation of a template that finds the shim through the slot.
#include "shim_vfs.h"

#include <sys/stat.h>

#include <array>
#include <atomic>
#include <cstring>
#include <new>
#include <string>
#include <string_view>

#include "context.h"
#include "shim_file.h"
#include "staging_recovery.h"
#include "untracked.h"

namespace quiesce {
namespace {

constexpr int kMaxShims = 8;

struct Shim {
  sqlite3_vfs vfs;          // what SQLite sees; zName points into `name`
  sqlite3_vfs* base;        // the wrapped VFS, captured before registering
  Context* context;
  std::string name;
  // Attached in place: `live` is the host's own sqlite3_vfs, whose xOpen
  // and xDelete now lead here; `original` is a copy of it as it was, and
  // `base` points to that copy. Files are AttachedFile.
  bool attached = false;
  sqlite3_vfs* live = nullptr;
  sqlite3_vfs original{};
};

std::array<std::atomic<Shim*>, kMaxShims> g_slots{};
Mutex g_register_mu;

bool EndsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::shared_ptr<Database> DatabaseOf(Context* context, const char* name,
                                     std::string_view suffix) {
  std::string_view path(name);
  if (!EndsWith(path, suffix)) return nullptr;
  path.remove_suffix(suffix.size());
  return context->FindByPath(std::string(path));
}

// Finds the database a new handle belongs to. May throw std::bad_alloc.
void Attach(Shim* shim, ShimFile* f, const char* name, int flags) {
  if (flags & SQLITE_OPEN_MAIN_DB) {
    struct stat st;
    // No identity, nothing to track: the file stays a plain pass-through.
    if (stat(name, &st) != 0) return;
    f->own = OpeningOwnConnection();
    f->db = shim->context->AttachMain(name, FileId{st.st_dev, st.st_ino},
                                      shim->name, shim->base, f->own);
    f->kind = FileKind::kMainDb;
    f->handle_id = shim->context->NextHandleId();
    f->db->AddHandle(f);
  } else if (flags & SQLITE_OPEN_WAL) {
    f->db = DatabaseOf(shim->context, name, "-wal");
    if (f->db) {
      f->kind = FileKind::kWal;
      f->db->OnWalFileOpened();
    }
  } else {
    f->db = DatabaseOf(shim->context, name, "-journal");
    if (f->db) {
      f->kind = FileKind::kMainJournal;
      f->db->OnJournalFileOpened();
    }
  }
}

int OpenTracked(Shim* shim, const char* name, sqlite3_file* file, int flags,
                int* out_flags) {
  if ((flags & SQLITE_OPEN_MAIN_DB) && !OpeningOwnConnection()) {
    RecoverStagingBeforeOpen(*shim->context, shim->name, name);
  }
  // Registered: the ShimFile is the caller's file, the real file after it.
  // Attached: the caller's file only points to an allocation of ours.
  void* storage = file;
  if (shim->attached) {
    storage = AllocateAttachedStorage(shim->base->szOsFile);
    if (storage == nullptr) {
      file->pMethods = nullptr;
      return SQLITE_NOMEM;
    }
  }
  ShimFile* f = new (storage) ShimFile();
  f->context = shim->context;
  sqlite3_file* real = f->real();
  if (!shim->attached) {
    std::memset(static_cast<void*>(real), 0,
                static_cast<size_t>(shim->base->szOsFile));
  }
  int rc = shim->base->xOpen(shim->base, name, real, flags, out_flags);
  if (rc == SQLITE_OK) {
    try {
      Attach(shim, f, name, flags);
    } catch (...) {  // std::bad_alloc: nothing may cross into SQLite
      if (f->kind == FileKind::kMainDb) {
        shim->context->DetachMain(f->db.get(), f->own);
      }
      rc = SQLITE_NOMEM;
    }
  }
  if (rc != SQLITE_OK) {
    // SQLite calls xClose only when pMethods is set: release what we made.
    if (real->pMethods) real->pMethods->xClose(real);
    f->~ShimFile();
    if (shim->attached) FreeAttachedStorage(storage);
    file->pMethods = nullptr;
    return rc;
  }
  f->fd = UnixFileDescriptor(shim->base, real);
  NoteFdOpened(f->fd, f->db ? f->db->file_id() : FileId{});
  const int version = real->pMethods->iVersion;
  if (shim->attached) {
    f->base.pMethods = ShimIoMethods(version);
    reinterpret_cast<AttachedFile*>(file)->shim = f;
    file->pMethods = AttachedIoMethods(version);
  } else {
    file->pMethods = ShimIoMethods(version);
  }
  return rc;
}

// --- VFS methods, one instantiation per slot -------------------------------

template <int N>
struct Slot {
  static Shim* shim() { return g_slots[N].load(std::memory_order_acquire); }
  static sqlite3_vfs* base() { return shim()->base; }

  static int Open(sqlite3_vfs*, const char* name, sqlite3_file* file,
                  int flags, int* out_flags) {
    Shim* s = shim();
    const bool tracked =
        name != nullptr &&
        (flags & (SQLITE_OPEN_MAIN_DB | SQLITE_OPEN_WAL |
                  SQLITE_OPEN_MAIN_JOURNAL)) != 0;
    if (!tracked) {
      // Temp files, sub-journals, super-journals: the base's own file, in
      // place, with no shim method in the way.
      return s->base->xOpen(s->base, name, file, flags, out_flags);
    }
    return OpenTracked(s, name, file, flags, out_flags);
  }

  static int Delete(sqlite3_vfs*, const char* name, int sync_dir) {
    Shim* s = shim();
    const int rc = s->base->xDelete(s->base, name, sync_dir);
    if (rc == SQLITE_OK && name != nullptr) {
      if (auto db = DatabaseOf(s->context, name, "-journal")) {
        db->OnJournalFinalized(JournalMode::kDelete);
      }
    }
    return rc;
  }

  static int Access(sqlite3_vfs*, const char* name, int flags, int* out) {
    return base()->xAccess(base(), name, flags, out);
  }
  static int FullPathname(sqlite3_vfs*, const char* name, int n, char* out) {
    return base()->xFullPathname(base(), name, n, out);
  }
  static void* DlOpen(sqlite3_vfs*, const char* name) {
    return base()->xDlOpen(base(), name);
  }
  static void DlError(sqlite3_vfs*, int n, char* msg) {
    base()->xDlError(base(), n, msg);
  }
  static void (*DlSym(sqlite3_vfs*, void* handle, const char* sym))(void) {
    return base()->xDlSym(base(), handle, sym);
  }
  static void DlClose(sqlite3_vfs*, void* handle) {
    base()->xDlClose(base(), handle);
  }
  static int Randomness(sqlite3_vfs*, int n, char* out) {
    return base()->xRandomness(base(), n, out);
  }
  static int Sleep(sqlite3_vfs*, int micros) {
    return base()->xSleep(base(), micros);
  }
  static int CurrentTime(sqlite3_vfs*, double* out) {
    return base()->xCurrentTime(base(), out);
  }
  static int GetLastError(sqlite3_vfs*, int n, char* out) {
    return base()->xGetLastError ? base()->xGetLastError(base(), n, out) : 0;
  }
  static int CurrentTimeInt64(sqlite3_vfs*, sqlite3_int64* out) {
    return base()->xCurrentTimeInt64(base(), out);
  }
  static int SetSystemCall(sqlite3_vfs*, const char* name,
                           sqlite3_syscall_ptr fn) {
    return base()->xSetSystemCall(base(), name, fn);
  }
  static sqlite3_syscall_ptr GetSystemCall(sqlite3_vfs*, const char* name) {
    return base()->xGetSystemCall(base(), name);
  }
  static const char* NextSystemCall(sqlite3_vfs*, const char* name) {
    return base()->xNextSystemCall(base(), name);
  }

  static void Fill(sqlite3_vfs* vfs, const sqlite3_vfs* b) {
    vfs->xOpen = Open;                                            /* xOpen */
    vfs->xDelete = Delete;                                        /* xDelete */
    vfs->xAccess = Access;                                        /* xAccess */
    vfs->xFullPathname = FullPathname;                  /* xFullPathname */
    vfs->xDlOpen = b->xDlOpen ? DlOpen : nullptr;                 /* xDlOpen */
    vfs->xDlError = b->xDlError ? DlError : nullptr;             /* xDlError */
    vfs->xDlSym = b->xDlSym ? DlSym : nullptr;                     /* xDlSym */
    vfs->xDlClose = b->xDlClose ? DlClose : nullptr;             /* xDlClose */
    vfs->xRandomness = Randomness;                        /* xRandomness */
    vfs->xSleep = Sleep;                                          /* xSleep */
    vfs->xCurrentTime = CurrentTime;                     /* xCurrentTime */
    vfs->xGetLastError = GetLastError;                  /* xGetLastError */
    if (vfs->iVersion >= 2) {
      vfs->xCurrentTimeInt64 = CurrentTimeInt64;    /* xCurrentTimeInt64 */
    }
    if (vfs->iVersion >= 3) {
      vfs->xSetSystemCall = b->xSetSystemCall ? SetSystemCall : nullptr;
      vfs->xGetSystemCall = b->xGetSystemCall ? GetSystemCall : nullptr;
      vfs->xNextSystemCall = b->xNextSystemCall ? NextSystemCall : nullptr;
    }
  }
};

using FillFn = void (*)(sqlite3_vfs*, const sqlite3_vfs*);
using OpenFn = int (*)(sqlite3_vfs*, const char*, sqlite3_file*, int, int*);

template <int... N>
constexpr std::array<FillFn, sizeof...(N)> MakeFills(
    std::integer_sequence<int, N...>) {
  return {&Slot<N>::Fill...};
}
template <int... N>
constexpr std::array<OpenFn, sizeof...(N)> MakeOpens(
    std::integer_sequence<int, N...>) {
  return {&Slot<N>::Open...};
}
constexpr auto kFills = MakeFills(std::make_integer_sequence<int, kMaxShims>());
constexpr auto kOpens = MakeOpens(std::make_integer_sequence<int, kMaxShims>());

// The slot of a VFS that is one of our shims, or -1.
int SlotOf(const sqlite3_vfs* vfs) {
  if (vfs == nullptr) return -1;
  for (int i = 0; i < kMaxShims; ++i) {
    if (vfs->xOpen == kOpens[static_cast<size_t>(i)]) return i;
  }
  return -1;
}

}  // namespace

int RegisterShim(Context* context, const std::string& base_name,
                 const std::string& vfs_name, bool make_default,
                 std::string* error) {
  MutexLock lock(&g_register_mu);
  const SqliteApi& api = context->api();
  // Already registered under this name by us: nothing to do.
  if (SlotOf(api.vfs_find(vfs_name.c_str())) >= 0) return SQLITE_OK;
  sqlite3_vfs* const head_now = api.vfs_find(nullptr);
  // Registered once, then pushed back by sqlite3_shutdown() and
  // sqlite3_initialize() (which re-registers SQLite's own VFSes in front):
  // put the same shim back, as the head when it takes over the head's name.
  for (auto& slot : g_slots) {
    Shim* shim = slot.load();
    if (shim != nullptr && shim->name == vfs_name) {
      const bool head = make_default ||
                        (head_now && head_now->zName &&
                         vfs_name == head_now->zName);
      return api.vfs_register(&shim->vfs, head ? 1 : 0);
    }
  }

  sqlite3_vfs* base =
      api.vfs_find(base_name.empty() ? nullptr : base_name.c_str());
  if (base == nullptr) {
    *error = "base VFS '" + base_name + "' is not registered";
    return SQLITE_ERROR;
  }
  if (const int slot = SlotOf(base); slot >= 0) {
    // Wrapping ourselves would track every file twice: wrap what we wrap.
    base = g_slots[static_cast<size_t>(slot)].load()->base;
  }
  int free_slot = -1;
  for (int i = 0; i < kMaxShims && free_slot < 0; ++i) {
    if (g_slots[static_cast<size_t>(i)].load() == nullptr) free_slot = i;
  }
  if (free_slot < 0) {
    *error = "too many quiesce VFSes registered";
    return SQLITE_FULL;
  }
  // SQLite's list is searched from its head and a non-default registration
  // goes right after the head: a shim that takes over the head's own name
  // must become the head, or the original would still be found first.
  sqlite3_vfs* head = api.vfs_find(nullptr);
  const bool takes_over_head =
      head != nullptr && vfs_name == (head->zName ? head->zName : "");
  make_default = make_default || takes_over_head;

  // Never freed: SQLite may use a registered VFS until the process ends.
  Shim* shim = new (std::nothrow) Shim();
  if (shim == nullptr) return SQLITE_NOMEM;
  shim->base = base;
  shim->context = context;
  shim->name = vfs_name;
  sqlite3_vfs& vfs = shim->vfs;
  vfs.iVersion = base->iVersion < 3 ? base->iVersion : 3;
  vfs.szOsFile =
      static_cast<int>(ShimFile::RealOffset()) + base->szOsFile;
  vfs.mxPathname = base->mxPathname;
  vfs.zName = shim->name.c_str();
  vfs.pAppData = shim;
  kFills[static_cast<size_t>(free_slot)](&vfs, base);
  g_slots[static_cast<size_t>(free_slot)].store(shim,
                                                std::memory_order_release);
  const int rc = api.vfs_register(&vfs, make_default ? 1 : 0);
  if (rc != SQLITE_OK) {
    g_slots[static_cast<size_t>(free_slot)].store(nullptr);
    delete shim;
    *error = "sqlite3_vfs_register failed";
  }
  return rc;
}

int AttachShim(Context* context, const std::string& vfs_name,
               bool* already, std::string* error) {
  MutexLock lock(&g_register_mu);
  *already = false;
  sqlite3_vfs* live = context->api().vfs_find(vfs_name.c_str());
  if (live == nullptr) {
    *error = "VFS '" + vfs_name + "' is not registered";
    return SQLITE_NOTFOUND;
  }
  // Ours already: attached before, or a registered shim of that name.
  if (SlotOf(live) >= 0) {
    *already = true;
    return SQLITE_OK;
  }
  if (live->szOsFile < static_cast<int>(sizeof(AttachedFile)) ||
      live->xOpen == nullptr || live->xDelete == nullptr) {
    *error = "VFS '" + vfs_name + "' cannot be wrapped in place";
    return SQLITE_ERROR;
  }
  int free_slot = -1;
  for (int i = 0; i < kMaxShims && free_slot < 0; ++i) {
    if (g_slots[static_cast<size_t>(i)].load() == nullptr) free_slot = i;
  }
  if (free_slot < 0) {
    *error = "too many quiesce VFSes";
    return SQLITE_FULL;
  }
  // Never freed: the host's VFS leads here for the process's life.
  Shim* shim = new (std::nothrow) Shim();
  if (shim == nullptr) return SQLITE_NOMEM;
  shim->original = *live;
  shim->base = &shim->original;
  shim->context = context;
  shim->name = vfs_name;
  shim->attached = true;
  shim->live = live;
  // The slot's methods, of which the live VFS takes xOpen and xDelete; its
  // other methods stay as they are (layers above copied them long ago).
  sqlite3_vfs& methods = shim->vfs;
  methods = *live;
  methods.pNext = nullptr;
  kFills[static_cast<size_t>(free_slot)](&methods, live);
  g_slots[static_cast<size_t>(free_slot)].store(shim,
                                                std::memory_order_release);
  // Threads may be calling these very pointers: one atomic store each, the
  // slot published before. xDelete first, so no file is opened through the
  // shim before its journal deletes are seen.
  __atomic_store_n(&live->xDelete, methods.xDelete, __ATOMIC_RELEASE);
  __atomic_store_n(&live->xOpen, methods.xOpen, __ATOMIC_RELEASE);
  return SQLITE_OK;
}

bool IsShim(const sqlite3_vfs* vfs) { return SlotOf(vfs) >= 0; }

}  // namespace quiesce
