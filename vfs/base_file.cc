#include "base_file.h"

#include <sys/stat.h>

#include <cerrno>
#include <new>

#include "untracked.h"

namespace quiesce {

Result<BaseFile> BaseFile::OpenReadOnly(sqlite3_vfs* vfs,
                                        const std::string& path, int kind) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0 && errno == ENOENT) {
    return Error{ErrorCode::kNotFound, path + " does not exist"};
  }
  if (vfs == nullptr || vfs->szOsFile <= 0) {
    return Error{ErrorCode::kInternal, "no base VFS to open " + path};
  }
  const size_t words = (static_cast<size_t>(vfs->szOsFile) +
                        sizeof(std::max_align_t) - 1) /
                       sizeof(std::max_align_t);
  BaseFile file;
  // Zeroed, as SQLite's own callers hand xOpen its memory.
  file.storage_.reset(new (std::nothrow) std::max_align_t[words]());
  if (!file.storage_) {
    return Error{ErrorCode::kInternal, "out of memory opening " + path};
  }
  int out_flags = 0;
  const int rc = vfs->xOpen(vfs, path.c_str(), file.get(),
                            SQLITE_OPEN_READONLY | kind, &out_flags);
  if (rc != SQLITE_OK) {
    // xClose is owed only when the base set pMethods.
    if (file.get()->pMethods == nullptr) file.storage_.reset();
    return Error{ErrorCode::kIoError, "cannot open " + path +
                                          " (SQLite code " +
                                          std::to_string(rc) + ")"};
  }
  file.fd_ = UnixFileDescriptor(vfs, file.get());
  if (file.fd_ >= 0) NoteFdOpened(file.fd_, FileId{});
  return file;
}

BaseFile& BaseFile::operator=(BaseFile&& other) noexcept {
  if (this != &other) {
    Close();
    storage_ = std::move(other.storage_);
    fd_ = other.fd_;
    other.fd_ = -1;
  }
  return *this;
}

int64_t BaseFile::Size() const {
  sqlite3_file* f = get();
  sqlite3_int64 size = 0;
  if (f == nullptr || f->pMethods->xFileSize(f, &size) != SQLITE_OK) return 0;
  return size;
}

void BaseFile::Close() {
  sqlite3_file* f = get();
  if (f != nullptr && f->pMethods != nullptr) f->pMethods->xClose(f);
  storage_.reset();
  NoteFdClosed(fd_);
  fd_ = -1;
}

}  // namespace quiesce
