// The host's configuration of the shim, from quiesce_config or from the
// environment (the loadable extension and the preload). One table of
// environment variables, one parser.
#ifndef QUIESCE_VFS_CONFIG_H_
#define QUIESCE_VFS_CONFIG_H_

#include <sys/types.h>

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "quiesce/quiesce.h"
#include "result.h"

namespace quiesce {

struct Config {
  std::string base_vfs;                // empty: the current default VFS
  std::string vfs_name = "quiesce";
  bool make_default = false;
  std::optional<std::string> socket;   // nullopt: no server; "": default path
  unsigned max_stall_ms = 5000;
  unsigned lease_ms = 0;               // 0: the longest allowed
  std::vector<uid_t> allow_uids;       // empty: the host's own uid
  std::string writable;                // "": none; "1": all; else a glob
  bool allow_ddl = false;
  // SQL functions injections may call beyond the built-in list (lower case).
  std::vector<std::string> inject_functions;
  quiesce_resolver resolve = nullptr;  // null: dlsym(RTLD_DEFAULT)
  void* resolve_arg = nullptr;
};

// One environment variable the shim reads, for --help texts and docs.
struct EnvVar {
  const char* name;
  const char* meaning;
};
const std::vector<EnvVar>& EnvVars();

using GetEnv = std::function<const char*(const char*)>;

// Reads the variables of EnvVars() through getenv; bad_request naming the
// variable and what is wrong with it.
Result<Config> ConfigFromEnv(const GetEnv& getenv);

// Validates a C config; bad_request saying what makes it unusable.
Result<Config> ConfigFromC(const quiesce_config* in);

// The margin kept between a lease (or an injection) and max_stall, so that
// quiesce always gives up before a host waiter would time out.
unsigned StallMarginMs(unsigned max_stall_ms);

// The lease bound in force: lease_ms capped at max_stall_ms minus the margin.
unsigned EffectiveLeaseMs(const Config& config);

}  // namespace quiesce

#endif  // QUIESCE_VFS_CONFIG_H_
