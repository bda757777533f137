#include "inject_functions.h"

#include <algorithm>

#include "ascii.h"

namespace quiesce {

const std::vector<std::string_view>& BuiltInInjectFunctions() {
  // Sorted, for the binary search below.
  static const std::vector<std::string_view> names = [] {
    std::vector<std::string_view> v = {
        // core scalar functions
        "abs", "changes", "char", "coalesce", "concat", "concat_ws",
        "hex", "if", "ifnull", "iif", "last_insert_rowid",
        "length", "likelihood", "likely", "lower", "max", "min", "nullif",
        "octet_length", "quote", "random", "randomblob", "round",
        "sign", "sqlite_version", "substr", "substring", "total_changes",
        "typeof", "unhex", "unicode", "unlikely", "upper", "zeroblob",
        // aggregates
        "avg", "count", "group_concat", "string_agg", "sum", "total",
        // date and time
        "date", "datetime", "julianday", "strftime", "time", "timediff",
        "unixepoch",
        // JSON (no json_patch: its merge is not linear; no json_each or
        // json_tree: virtual tables are refused anyway)
        "->", "->>", "json", "json_array", "json_array_length",
        "json_extract", "json_group_array", "json_group_object",
        "json_insert", "json_object", "json_quote", "json_remove",
        "json_replace", "json_set", "json_type", "json_valid"};
    std::sort(v.begin(), v.end());
    return v;
  }();
  return names;
}

bool InjectFunctionAllowed(std::string_view name,
                           const std::vector<std::string>& extra) {
  const std::string lower = AsciiLower(name);
  const auto& names = BuiltInInjectFunctions();
  return std::binary_search(names.begin(), names.end(),
                            std::string_view(lower)) ||
         std::find(extra.begin(), extra.end(), lower) != extra.end();
}

}  // namespace quiesce
