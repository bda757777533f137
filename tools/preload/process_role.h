// Whether this process is one of Firefox's content processes.
//
// Content processes inherit LD_PRELOAD from the parent. They keep no
// database a client could name (profile storage lives in the parent; the
// sandbox denies them the profile) and no control server may run there, so
// the preload leaves them exactly as they are: it registers nothing.
#ifndef QUIESCE_TOOLS_PRELOAD_PROCESS_ROLE_H_
#define QUIESCE_TOOLS_PRELOAD_PROCESS_ROLE_H_

#include <string_view>

namespace quiesce::preload {

// Whether `cmdline` (as /proc/<pid>/cmdline holds it) has the argument
// "-contentproc". Arguments end at a NUL or, once Firefox has rewritten a
// content process's title into one string, at a space.
bool HasContentProcArgument(std::string_view cmdline);

// Whether /proc/self/cmdline says this is a content process. A cmdline that
// cannot be read counts as one: doing nothing is the safe choice.
bool IsContentProcess();

}  // namespace quiesce::preload

#endif  // QUIESCE_TOOLS_PRELOAD_PROCESS_ROLE_H_
