// A file quiesce opens itself through the base VFS, below the shim: for
// reading a database that the host holds locked in exclusive locking mode,
// where no second connection can. It takes no lock and is never written.
//
// On "unix", closing it while the host still holds POSIX locks on the same
// file does not drop them: SQLite parks the descriptor until the host's
// locks go, and the next open of the database reuses it (one descriptor at
// most per database).
#ifndef QUIESCE_VFS_BASE_FILE_H_
#define QUIESCE_VFS_BASE_FILE_H_

#include <sqlite3.h>

#include <cstddef>
#include <memory>
#include <string>

#include "result.h"

namespace quiesce {

class BaseFile {
 public:
  // Opens path read-only; flags add the file's kind (SQLITE_OPEN_MAIN_DB,
  // SQLITE_OPEN_WAL). A file that does not exist is kNotFound.
  static Result<BaseFile> OpenReadOnly(sqlite3_vfs* vfs,
                                       const std::string& path, int kind);

  BaseFile() = default;
  BaseFile(BaseFile&& other) noexcept
      : storage_(std::move(other.storage_)), fd_(other.fd_) {
    other.fd_ = -1;
  }
  BaseFile& operator=(BaseFile&& other) noexcept;
  BaseFile(const BaseFile&) = delete;
  BaseFile& operator=(const BaseFile&) = delete;
  ~BaseFile() { Close(); }

  // The open file, or null.
  sqlite3_file* get() const {
    return reinterpret_cast<sqlite3_file*>(storage_.get());
  }
  // Its length in bytes (0 when it cannot be told).
  int64_t Size() const;

 private:
  void Close();

  // Holds the base VFS's sqlite3_file (szOsFile bytes), aligned for it.
  std::unique_ptr<std::max_align_t[]> storage_;
  // Its descriptor, known to untracked.h as quiesce's own (-1: unknown).
  int fd_ = -1;
};

}  // namespace quiesce

#endif  // QUIESCE_VFS_BASE_FILE_H_
