// quiescectl's exit codes (DESIGN.md "Contracts"): what a script can act on.
#ifndef QUIESCE_TOOLS_QUIESCECTL_EXIT_CODES_H_
#define QUIESCE_TOOLS_QUIESCECTL_EXIT_CODES_H_

#include <string_view>

namespace quiesce::ctl {

enum Exit : int {
  kExitOk = 0,
  kExitFailure = 1,      // anything not listed below
  kExitUsage = 2,        // bad command line
  kExitUnreachable = 3,  // no host at the socket
  kExitRefused = 4,      // forbidden, not_found, unsupported
  kExitBusy = 5,         // busy, timeout (try again later)
};

// The exit code for an error reply's code.
inline Exit ExitForError(std::string_view code) {
  if (code == "forbidden" || code == "not_found" || code == "unsupported") {
    return kExitRefused;
  }
  if (code == "busy" || code == "timeout") return kExitBusy;
  return kExitFailure;
}

}  // namespace quiesce::ctl

#endif  // QUIESCE_TOOLS_QUIESCECTL_EXIT_CODES_H_
