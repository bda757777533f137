#include "untracked.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <map>
#include <set>
#include <string_view>

#include "context.h"
#include "mutex.h"

namespace quiesce {

const char kOpenedBeforeAttach[] =
    "opened before quiesce attached; it becomes available once the host "
    "reopens it";

namespace {

// Descriptors that files of the shim hold or have held (while they stay
// open), with how many files hold each now.
struct Registry {
  Mutex mu;
  std::map<int, int> holders QUIESCE_GUARDED_BY(mu);
  std::set<FileId> unknown QUIESCE_GUARDED_BY(mu);  // databases
};

Registry& registry() {
  static Registry* r = new Registry();  // never destroyed: used at exit
  return *r;
}

// The head of os_unix.c's unixFile.
struct UnixFileHead {
  const sqlite3_io_methods* methods;
  const sqlite3_vfs* vfs;
  const void* inode;
  int h;
};

bool EndsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

struct OpenFd {
  int fd;
  std::string path;
  FileId id;
};

// The process's descriptors on regular files.
std::vector<OpenFd> RegularFds() {
  std::vector<OpenFd> out;
  DIR* dir = opendir("/proc/self/fd");
  if (dir == nullptr) return out;
  const int own = dirfd(dir);
  // The stream is this call's own: glibc's readdir is safe per stream
  // (readdir_r is deprecated).
  // NOLINTNEXTLINE(concurrency-mt-unsafe)
  while (dirent* e = readdir(dir)) {
    char* end = nullptr;
    const long fd = std::strtol(e->d_name, &end, 10);
    if (end == e->d_name || *end != '\0' || fd == own) continue;
    // stat through the /proc link, not fstat on the descriptor: it belongs
    // to another thread, which may close it meanwhile (then the link is
    // gone, or names whatever reused the number: harmless here).
    const std::string link = std::string("/proc/self/fd/") + e->d_name;
    struct stat st;
    if (stat(link.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
    char target[4096];
    const ssize_t n = readlink(link.c_str(), target, sizeof(target) - 1);
    if (n <= 0) continue;
    out.push_back({static_cast<int>(fd), std::string(target, size_t(n)),
                   FileId{st.st_dev, st.st_ino}});
  }
  closedir(dir);
  return out;
}

bool Known(int fd) {
  Registry& r = registry();
  MutexLock lock(&r.mu);
  return r.holders.count(fd) != 0;
}

bool StatId(const std::string& path, FileId* id) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) return false;
  *id = FileId{st.st_dev, st.st_ino};
  return true;
}

// Whether the file at fd begins with SQLite's header. pread on the
// descriptor itself: no open, no close, no lock, no file offset moved.
bool LooksLikeDatabase(int fd) {
  static constexpr char kHeader[] = "SQLite format 3";  // and its NUL
  char buf[sizeof(kHeader)];
  ssize_t n;
  do {
    n = pread(fd, buf, sizeof(buf), 0);
  } while (n < 0 && errno == EINTR);
  return n == static_cast<ssize_t>(sizeof(buf)) &&
         std::memcmp(buf, kHeader, sizeof(buf)) == 0;
}

std::string Basename(const std::string& path) {
  const size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

}  // namespace

int UnixFileDescriptor(const sqlite3_vfs* vfs, const sqlite3_file* file) {
  if (vfs == nullptr || file == nullptr || file->pMethods == nullptr ||
      vfs->szOsFile < static_cast<int>(sizeof(UnixFileHead))) {
    return -1;
  }
  UnixFileHead head;
  std::memcpy(&head, file, sizeof(head));
  if (head.vfs != vfs || head.h < 0) return -1;
  return head.h;
}

void NoteFdOpened(int fd, FileId main_id) {
  Registry& r = registry();
  MutexLock lock(&r.mu);
  if (fd < 0) {
    r.unknown.insert(main_id);
  } else {
    ++r.holders[fd];
  }
}

void NoteFdClosed(int fd) {
  if (fd < 0) return;
  Registry& r = registry();
  MutexLock lock(&r.mu);
  auto it = r.holders.find(fd);
  if (it == r.holders.end()) return;
  if (it->second > 0) --it->second;
  // Parked by the base VFS (still open): stays known, for whoever reuses it.
  if (it->second == 0 && fcntl(fd, F_GETFD) < 0 && errno == EBADF) {
    r.holders.erase(it);
  }
}

std::vector<std::string> UntrackedDescriptors(const Database& db,
                                              bool* unknown) {
  {
    Registry& r = registry();
    MutexLock lock(&r.mu);
    *unknown = r.unknown.count(db.file_id()) != 0;
  }
  FileId wal{}, journal{};
  const bool have_wal = StatId(db.path() + "-wal", &wal);
  const bool have_journal = StatId(db.path() + "-journal", &journal);
  std::vector<std::string> out;
  for (const OpenFd& f : RegularFds()) {
    const bool ours = f.id == db.file_id() || (have_wal && f.id == wal) ||
                      (have_journal && f.id == journal);
    if (ours && !Known(f.fd)) {
      out.push_back(f.path + " (fd " + std::to_string(f.fd) + ")");
    }
  }
  return out;
}

Result<Ok> CheckFullyTracked(const Database& db, bool attached) {
  bool unknown = false;
  const std::vector<std::string> files = UntrackedDescriptors(db, &unknown);
  if (files.empty() && !(unknown && attached)) return Ok{};
  std::string message = db.path() + ": ";
  if (files.empty()) {
    message +=
        "quiesce cannot tell its own descriptors from others' on this "
        "database (the VFS below the shim is not SQLite's unix VFS), so it "
        "cannot vouch that nothing opened it before the attach";
  } else {
    message += std::string(kOpenedBeforeAttach) + " (open untracked:";
    for (const std::string& f : files) message += " " + f;
    message += ")";
  }
  return Error{ErrorCode::kUnsupported, message};
}

std::vector<UntrackedDatabase> ScanUntracked(Context& context) {
  std::map<std::string, UntrackedDatabase> found;
  for (const OpenFd& f : RegularFds()) {
    if (Known(f.fd)) continue;
    std::string main;
    if (EndsWith(f.path, "-wal")) {
      main = f.path.substr(0, f.path.size() - 4);
    } else if (EndsWith(f.path, "-journal")) {
      main = f.path.substr(0, f.path.size() - 8);
    } else if (LooksLikeDatabase(f.fd)) {
      main = f.path;
    } else {
      continue;
    }
    UntrackedDatabase& db = found[main];
    db.path = main;
    const std::string name = Basename(f.path);
    bool listed = false;
    for (const std::string& n : db.files) listed |= n == name;
    if (!listed) db.files.push_back(name);
    ++db.descriptors;
  }
  std::vector<UntrackedDatabase> out;
  for (auto& [path, db] : found) {
    db.partly_tracked = context.FindByPath(path) != nullptr;
    out.push_back(std::move(db));
  }
  return out;
}

}  // namespace quiesce
