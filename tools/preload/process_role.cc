#include "process_role.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <string>

namespace quiesce::preload {

bool HasContentProcArgument(std::string_view cmdline) {
  while (!cmdline.empty()) {
    const size_t end = cmdline.find_first_of(std::string_view("\0 ", 2));
    if (cmdline.substr(0, end) == "-contentproc") return true;
    if (end == std::string_view::npos) break;
    cmdline.remove_prefix(end + 1);
  }
  return false;
}

bool IsContentProcess() {
  const int fd = open("/proc/self/cmdline", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return true;
  std::string cmdline;
  char buf[4096];
  // A content process's arguments run to a few hundred bytes; 64 KiB is
  // enough for any cmdline and bounds the read.
  while (cmdline.size() < 64 * 1024) {
    const ssize_t n = read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    cmdline.append(buf, static_cast<size_t>(n));
  }
  close(fd);
  return cmdline.empty() || HasContentProcArgument(cmdline);
}

}  // namespace quiesce::preload
