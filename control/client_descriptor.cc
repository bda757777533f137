#include "client_descriptor.h"

#include <fcntl.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/vfs.h>

#include <cstdint>
#include <string>

#include "errno_text.h"

namespace quiesce::control {
namespace {

// Filesystems whose files can block in read or write whatever O_NONBLOCK
// says (network and userspace filesystems). Some magics are not in every
// kernel's headers.
bool MayBlock(uint32_t type) {
  switch (type) {
    case NFS_SUPER_MAGIC:
    case SMB_SUPER_MAGIC:
    case CODA_SUPER_MAGIC:
    case AFS_SUPER_MAGIC:
    case V9FS_MAGIC:
    case 0x65735546u:  // FUSE (and Android's emulated storage)
    case 0xFF534D42u:  // CIFS
    case 0xFE534D42u:  // SMB2
    case 0x00C36400u:  // Ceph
    case 0x6B414653u:  // kAFS
    case 0x01161970u:  // GFS2
    case 0x7461636Fu:  // OCFS2
    case 0x47504653u:  // GPFS
    case 0x0BD00BD0u:  // Lustre
      return true;
    default:
      return false;
  }
}

}  // namespace

Result<Ok> CheckCannotBlock(int fd, const char* what) {
  struct stat st;
  if (fstat(fd, &st) != 0) {
    return Error{ErrorCode::kBadRequest,
                 std::string(what) + ": " + ErrnoText(errno)};
  }
  if (!S_ISREG(st.st_mode)) return Ok{};  // pipes, sockets, devices
  struct statfs fs;
  if (fstatfs(fd, &fs) != 0) {
    return Error{ErrorCode::kBadRequest,
                 std::string(what) + ": " + ErrnoText(errno)};
  }
  if (MayBlock(static_cast<uint32_t>(fs.f_type))) {
    return Error{ErrorCode::kBadRequest,
                 std::string(what) +
                     " is a file on a network or userspace filesystem, "
                     "whose I/O can block the host: pass a pipe instead "
                     "(and copy from it to the file yourself)"};
  }
  return Ok{};
}

NonBlocking::NonBlocking(int fd) : fd_(fd), flags_(fcntl(fd, F_GETFL)) {
  if (flags_ >= 0 && !(flags_ & O_NONBLOCK)) {
    fcntl(fd_, F_SETFL, flags_ | O_NONBLOCK);
  }
}

NonBlocking::~NonBlocking() {
  if (flags_ >= 0 && !(flags_ & O_NONBLOCK)) fcntl(fd_, F_SETFL, flags_);
}

}  // namespace quiesce::control
