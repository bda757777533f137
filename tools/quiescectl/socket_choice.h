// Which host socket quiescectl talks to: --socket, else QUIESCE_SOCKET,
// else the only socket in the default directories.
#ifndef QUIESCE_TOOLS_QUIESCECTL_SOCKET_CHOICE_H_
#define QUIESCE_TOOLS_QUIESCECTL_SOCKET_CHOICE_H_

#include <string>

namespace quiesce::ctl {

// Returns false with *error (which says what to do) when no single socket
// can be chosen.
bool ChooseSocket(const std::string& flag, std::string* socket,
                  std::string* error);

}  // namespace quiesce::ctl

#endif  // QUIESCE_TOOLS_QUIESCECTL_SOCKET_CHOICE_H_
