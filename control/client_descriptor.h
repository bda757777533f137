// Descriptors a client passes (SCM_RIGHTS) are read and written by a job
// thread in the host, with poll() and a deadline. That bounds the job only
// if the descriptor honours O_NONBLOCK: pipes, sockets and character
// devices do, and so do regular files on local filesystems (whose I/O is
// bounded by the disk). A regular file on a network or userspace
// filesystem (NFS, SMB, FUSE, 9p, Ceph, ...) ignores O_NONBLOCK and may
// block for as long as its server likes, holding the job and, at
// quiesce_shutdown, the host: such descriptors are refused.
#ifndef QUIESCE_CONTROL_CLIENT_DESCRIPTOR_H_
#define QUIESCE_CONTROL_CLIENT_DESCRIPTOR_H_

#include "result.h"

namespace quiesce::control {

// Ok when I/O on fd cannot block past a poll() deadline; `what` names the
// descriptor in the error ("the snapshot's descriptor").
Result<Ok> CheckCannotBlock(int fd, const char* what);

// Sets O_NONBLOCK on a client's descriptor for its lifetime and gives the
// client back the flags it had (the open file description is shared).
class NonBlocking {
 public:
  explicit NonBlocking(int fd);
  ~NonBlocking();
  NonBlocking(const NonBlocking&) = delete;
  NonBlocking& operator=(const NonBlocking&) = delete;
  // The descriptor's flags before, or -1 when they could not be read.
  int flags() const { return flags_; }

 private:
  const int fd_;
  int flags_;
};

}  // namespace quiesce::control

#endif  // QUIESCE_CONTROL_CLIENT_DESCRIPTOR_H_
