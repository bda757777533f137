// The SQL functions an injection may call. SQLite's progress handler does
// not run inside one function call, so a function whose cost grows faster
// than its arguments (instr, replace, trim with a set, LIKE and GLOB
// patterns) or with a number it is given (printf and format: '%.*c' with a
// precision of 10^9 loops 10^9 times in SQLite 3.40, whatever the length
// limit) could hold the gate past its lease however small the script.
// Every function here costs at most linear time in arguments that
// sqlite3_limit bounds (OwnConnection::kMaxValueBytes); the host may name
// more (quiesce_config.inject_functions, QUIESCE_INJECT_FUNCTIONS).
#ifndef QUIESCE_VFS_INJECT_FUNCTIONS_H_
#define QUIESCE_VFS_INJECT_FUNCTIONS_H_

#include <string>
#include <string_view>
#include <vector>

namespace quiesce {

// The built-in list, lower case, for documentation and tests.
const std::vector<std::string_view>& BuiltInInjectFunctions();

// Whether an injection may call `name` (any case): built in, or in
// `extra` (lower case, as the configuration parser leaves it).
bool InjectFunctionAllowed(std::string_view name,
                           const std::vector<std::string>& extra);

}  // namespace quiesce

#endif  // QUIESCE_VFS_INJECT_FUNCTIONS_H_
