// Progress lines for quiescectl's long steps, on stderr and only when
// stderr is a terminal: scripts and logs get none.
#ifndef QUIESCE_TOOLS_QUIESCECTL_TERMINAL_PROGRESS_H_
#define QUIESCE_TOOLS_QUIESCECTL_TERMINAL_PROGRESS_H_

#include <cstdint>
#include <functional>
#include <string>

namespace quiesce::ctl {

// A callback that rewrites one line, "WHAT:  42% (N of M UNIT)" (just the
// percentage when `unit` is empty), ending it when done == total. Empty
// when stderr is not a terminal.
std::function<void(uint64_t done, uint64_t total)> TerminalProgress(
    std::string what, std::string unit);

}  // namespace quiesce::ctl

#endif  // QUIESCE_TOOLS_QUIESCECTL_TERMINAL_PROGRESS_H_
