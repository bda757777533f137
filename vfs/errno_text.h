// The text of an errno value, for host code. std::strerror may return a
// buffer shared by every thread (POSIX lets it; older glibc does so for
// unknown numbers), and host code runs on its own threads beside the
// host's: it uses this instead (clang-tidy's concurrency-mt-unsafe keeps
// strerror out of vfs/ and control/).
#ifndef QUIESCE_VFS_ERRNO_TEXT_H_
#define QUIESCE_VFS_ERRNO_TEXT_H_

#include <string.h>

#include <string>

namespace quiesce {
namespace errno_text_internal {

// strerror_r comes in two kinds: GNU's returns the text (in the buffer or
// a static string); POSIX's fills the buffer and returns 0 or an error.
inline const char* Text(const char* gnu_text, const char* /*buffer*/) {
  return gnu_text;
}
inline const char* Text(int posix_rc, const char* buffer) {
  return posix_rc == 0 ? buffer : "unknown error";
}

}  // namespace errno_text_internal

inline std::string ErrnoText(int error) {
  char buffer[128] = {};
  return errno_text_internal::Text(strerror_r(error, buffer, sizeof(buffer)),
                                   buffer);
}

}  // namespace quiesce

#endif  // QUIESCE_VFS_ERRNO_TEXT_H_
