// Typed errors for host code, and the one list of their names: the control
// protocol's error codes (docs/protocol.md) are these names, encoded by
// control/codec.cc with ErrorCodeName. Host code uses no exceptions and no
// Abseil: Result<T> is its absl::StatusOr.
#ifndef QUIESCE_VFS_RESULT_H_
#define QUIESCE_VFS_RESULT_H_

#include <array>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace quiesce {

enum class ErrorCode {
  kBadRequest,
  kUnknownOp,  // the protocol's: a request naming no operation it has
  kNotFound,
  kForbidden,
  kBusy,
  kTimeout,
  kUnsupported,
  kIoError,
  kSqlError,
  kInternal,
};

// The names, in the enum's order; a code's name never changes once
// released (clients match on it).
inline constexpr std::array<std::string_view, 10> kErrorCodeNames = {
    "bad_request", "unknown_op",  "not_found", "forbidden", "busy",
    "timeout",     "unsupported", "io_error",  "sql_error", "internal",
};
static_assert(kErrorCodeNames.size() ==
              static_cast<size_t>(ErrorCode::kInternal) + 1);

// "bad_request", "not_found", ...: NUL-terminated, for C APIs too.
constexpr const char* ErrorCodeName(ErrorCode code) {
  return kErrorCodeNames[static_cast<size_t>(code)].data();
}

constexpr std::optional<ErrorCode> ErrorCodeFromName(std::string_view name) {
  for (size_t i = 0; i < kErrorCodeNames.size(); ++i) {
    if (name == kErrorCodeNames[i]) return static_cast<ErrorCode>(i);
  }
  return std::nullopt;
}

struct Error {
  ErrorCode code;
  std::string message;
};

// A value or an Error. [[nodiscard]]: an ignored failure is a bug.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : value_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Error error) : error_(std::move(error)) {}  // NOLINT
  bool ok() const { return value_.has_value(); }
  const T& value() const { return *value_; }
  T& value() { return *value_; }
  const Error& error() const { return error_; }

 private:
  std::optional<T> value_;
  Error error_{ErrorCode::kInternal, ""};
};

struct Ok {};

}  // namespace quiesce

#endif  // QUIESCE_VFS_RESULT_H_
