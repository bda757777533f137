#include "terminal_progress.h"

#include <unistd.h>

#include <cstdio>

namespace quiesce::ctl {

std::function<void(uint64_t, uint64_t)> TerminalProgress(std::string what,
                                                         std::string unit) {
  if (!isatty(STDERR_FILENO)) return nullptr;
  return [what = std::move(what), unit = std::move(unit)](uint64_t done,
                                                          uint64_t total) {
    const auto percent = static_cast<unsigned long long>(
        total ? done * 100 / total : 100);
    if (unit.empty()) {
      std::fprintf(stderr, "\r%s: %3llu%%", what.c_str(), percent);
    } else {
      std::fprintf(stderr, "\r%s: %3llu%% (%llu of %llu %s)", what.c_str(),
                   percent, static_cast<unsigned long long>(done),
                   static_cast<unsigned long long>(total), unit.c_str());
    }
    if (done == total) std::fprintf(stderr, "\n");
  };
}

}  // namespace quiesce::ctl
