#include "socket_choice.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <vector>

#include "socket_path.h"

namespace quiesce::ctl {

bool ChooseSocket(const std::string& flag, std::string* socket,
                  std::string* error) {
  if (!flag.empty()) {
    *socket = flag;
    return true;
  }
  if (const char* env = std::getenv("QUIESCE_SOCKET"); env && *env) {
    *socket = env;
    return true;
  }
  const auto dirs =
      control::DefaultSocketDirs(std::getenv("XDG_RUNTIME_DIR"), geteuid());
  std::vector<std::string> found;
  for (const std::string& dir : dirs) {
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
      if (entry.path().extension() == ".sock" &&
          entry.is_socket(ec)) {
        found.push_back(entry.path().string());
      }
    }
  }
  if (found.size() == 1) {
    *socket = found.front();
    return true;
  }
  std::string where;
  for (const std::string& dir : dirs) where += " " + dir;
  if (found.empty()) {
    *error = "no host socket found in" + where +
             "; is the host running with the shim loaded? Name its socket "
             "with --socket PATH or QUIESCE_SOCKET. (If the host runs, its "
             "SQLite log says why the control server did not start.)";
  } else {
    *error = std::to_string(found.size()) + " host sockets found:";
    for (const std::string& s : found) *error += "\n  " + s;
    *error += "\nchoose one with --socket PATH";
  }
  return false;
}

}  // namespace quiesce::ctl
