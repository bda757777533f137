// Whole-number flag values for the tools' command lines. std::atoi reads
// "5x" as 5 and "x" as 0, which turns a typo into a different run (for
// hostsim, `--serve x` into no server at all): the whole text must be a
// decimal number within [min, max].
#ifndef QUIESCE_TOOLS_NUMBER_FLAG_H_
#define QUIESCE_TOOLS_NUMBER_FLAG_H_

#include <cerrno>
#include <cstdlib>
#include <optional>

namespace quiesce::tools {

inline std::optional<long long> ParseNumber(const char* text, long long min,
                                            long long max) {
  if (text == nullptr || *text == '\0') return std::nullopt;
  errno = 0;
  char* end = nullptr;
  const long long value = std::strtoll(text, &end, 10);
  if (errno != 0 || *end != '\0' || value < min || value > max) {
    return std::nullopt;
  }
  return value;
}

}  // namespace quiesce::tools

#endif  // QUIESCE_TOOLS_NUMBER_FLAG_H_
