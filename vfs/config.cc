#include "config.h"

#include <algorithm>
#include <charconv>
#include <cstddef>
#include <cstring>
#include <string_view>

#include "ascii.h"

namespace quiesce {
namespace {

constexpr unsigned kMaxStallLimitMs = 10 * 60 * 1000;

bool ParseUnsigned(std::string_view text, unsigned* out) {
  if (text.empty()) return false;
  unsigned value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size()) return false;
  *out = value;
  return true;
}

bool ParseBool(std::string_view text, bool* out) {
  if (text == "1" || text == "true" || text == "yes" || text == "on") {
    *out = true;
    return true;
  }
  if (text == "0" || text == "false" || text == "no" || text == "off" ||
      text.empty()) {
    *out = false;
    return true;
  }
  return false;
}

bool ParseUidList(std::string_view text, std::vector<uid_t>* out) {
  out->clear();
  while (!text.empty()) {
    const size_t comma = text.find(',');
    unsigned uid = 0;
    if (!ParseUnsigned(text.substr(0, comma), &uid)) return false;
    out->push_back(static_cast<uid_t>(uid));
    if (comma == std::string_view::npos) break;
    text.remove_prefix(comma + 1);
  }
  return true;
}

// "a, B,c" -> {"a", "b", "c"}; false on an empty or odd name.
bool ParseFunctionList(std::string_view text, std::vector<std::string>* out) {
  out->clear();
  while (!text.empty()) {
    const size_t comma = text.find(',');
    std::string_view name = text.substr(0, comma);
    while (!name.empty() && name.front() == ' ') name.remove_prefix(1);
    while (!name.empty() && name.back() == ' ') name.remove_suffix(1);
    if (name.empty()) return false;
    for (char c : name) {
      const bool word = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                        (c >= '0' && c <= '9') || c == '_';
      if (!word) return false;
    }
    out->push_back(AsciiLower(name));
    if (comma == std::string_view::npos) break;
    text.remove_prefix(comma + 1);
  }
  return true;
}

// The default max_stall_ms for 0, and its range.
Result<Config> CheckStall(Config config) {
  if (config.max_stall_ms == 0) config.max_stall_ms = 5000;
  if (config.max_stall_ms < 100 || config.max_stall_ms > kMaxStallLimitMs) {
    return Error{ErrorCode::kBadRequest,
                 "max_stall_ms must be between 100 and 600000"};
  }
  return config;
}

}  // namespace

const std::vector<EnvVar>& EnvVars() {
  static const std::vector<EnvVar> vars = {
      {"QUIESCE_SOCKET",
       "control socket: a path, @name (abstract), or empty for "
       "$XDG_RUNTIME_DIR/quiesce/<pid>.sock; unset: no control server"},
      {"QUIESCE_BASE_VFS", "the VFS to wrap (default: the default VFS)"},
      {"QUIESCE_VFS_NAME",
       "name to register under (default: quiesce; the base's own name "
       "replaces it)"},
      {"QUIESCE_DEFAULT", "1: register as the default VFS"},
      {"QUIESCE_MAX_STALL_MS",
       "longest wait of a host lock request at a closed gate (default 5000)"},
      {"QUIESCE_LEASE_MS", "longest lease on a quiescent point"},
      {"QUIESCE_ALLOW_UIDS", "comma-separated peer uids allowed to connect"},
      {"QUIESCE_WRITABLE", "1, or a glob of database paths clients may write"},
      {"QUIESCE_ALLOW_DDL", "1: injections may run DDL"},
      {"QUIESCE_INJECT_FUNCTIONS",
       "comma-separated SQL functions injections may call beyond the "
       "built-in list (each must cost linear time at most)"},
  };
  return vars;
}

Result<Config> ConfigFromEnv(const GetEnv& getenv) {
  Config c;
  auto bad = [](const char* name, const char* value, const char* want) {
    return Error{ErrorCode::kBadRequest,
                 std::string(name) + "='" + value + "': expected " + want};
  };
  if (const char* v = getenv("QUIESCE_SOCKET")) c.socket = v;
  if (const char* v = getenv("QUIESCE_BASE_VFS")) c.base_vfs = v;
  if (const char* v = getenv("QUIESCE_VFS_NAME"); v && *v) c.vfs_name = v;
  if (const char* v = getenv("QUIESCE_DEFAULT")) {
    if (!ParseBool(v, &c.make_default)) {
      return bad("QUIESCE_DEFAULT", v, "0 or 1");
    }
  }
  if (const char* v = getenv("QUIESCE_MAX_STALL_MS")) {
    if (!ParseUnsigned(v, &c.max_stall_ms)) {
      return bad("QUIESCE_MAX_STALL_MS", v, "milliseconds");
    }
  }
  if (const char* v = getenv("QUIESCE_LEASE_MS")) {
    if (!ParseUnsigned(v, &c.lease_ms)) {
      return bad("QUIESCE_LEASE_MS", v, "milliseconds");
    }
  }
  if (const char* v = getenv("QUIESCE_ALLOW_UIDS")) {
    if (!ParseUidList(v, &c.allow_uids)) {
      return bad("QUIESCE_ALLOW_UIDS", v, "comma-separated uids");
    }
  }
  if (const char* v = getenv("QUIESCE_WRITABLE")) c.writable = v;
  if (const char* v = getenv("QUIESCE_ALLOW_DDL")) {
    if (!ParseBool(v, &c.allow_ddl)) {
      return bad("QUIESCE_ALLOW_DDL", v, "0 or 1");
    }
  }
  if (const char* v = getenv("QUIESCE_INJECT_FUNCTIONS")) {
    if (!ParseFunctionList(v, &c.inject_functions)) {
      return bad("QUIESCE_INJECT_FUNCTIONS", v,
                 "comma-separated function names");
    }
  }
  if (c.writable == "0") c.writable.clear();
  return CheckStall(std::move(c));
}

Result<Config> ConfigFromC(const quiesce_config* in) {
  if (in == nullptr || in->size < offsetof(quiesce_config, resolve)) {
    return Error{ErrorCode::kBadRequest,
                 "quiesce_config is null or its size field is not set"};
  }
  // Fields past in->size come from a newer header than the host's: absent.
  quiesce_config full{};
  std::memcpy(&full, in, std::min(in->size, sizeof(full)));
  Config c;
  if (full.base_vfs) c.base_vfs = full.base_vfs;
  if (full.vfs_name && *full.vfs_name) c.vfs_name = full.vfs_name;
  c.make_default = full.make_default != 0;
  if (full.socket_path) c.socket = full.socket_path;
  c.max_stall_ms = full.max_stall_ms;
  c.lease_ms = full.lease_ms;
  if (full.allow_uids && !ParseUidList(full.allow_uids, &c.allow_uids)) {
    return Error{ErrorCode::kBadRequest,
                 std::string("allow_uids='") + full.allow_uids +
                     "': expected comma-separated uids"};
  }
  if (full.writable) c.writable = full.writable;
  if (c.writable == "0") c.writable.clear();
  c.allow_ddl = full.allow_ddl != 0;
  if (full.inject_functions &&
      !ParseFunctionList(full.inject_functions, &c.inject_functions)) {
    return Error{ErrorCode::kBadRequest,
                 std::string("inject_functions='") + full.inject_functions +
                     "': expected comma-separated function names"};
  }
  c.resolve = full.resolve;
  c.resolve_arg = full.resolve_arg;
  return CheckStall(std::move(c));
}

unsigned StallMarginMs(unsigned max_stall_ms) {
  // A quarter of the budget, at most a second: enough to roll back an
  // injection or revoke a lease before any host waiter gives up.
  return std::min(max_stall_ms / 4, 1000u);
}

unsigned EffectiveLeaseMs(const Config& config) {
  const unsigned cap = config.max_stall_ms - StallMarginMs(config.max_stall_ms);
  return config.lease_ms == 0 ? cap : std::min(config.lease_ms, cap);
}

}  // namespace quiesce
