// Typed errors for host code, named as the control protocol names them.
// Host code uses no exceptions and no Abseil: this is its absl::StatusOr.
#ifndef QUIESCE_VFS_RESULT_H_
#define QUIESCE_VFS_RESULT_H_

#include <optional>
#include <string>
#include <utility>

namespace quiesce {

enum class ErrorCode {
  kBadRequest,
  kNotFound,
  kForbidden,
  kBusy,
  kTimeout,
  kUnsupported,
  kIoError,
  kSqlError,
  kInternal,
};

// "bad_request", "not_found", ...: the protocol's error codes.
const char* ErrorCodeName(ErrorCode code);

struct Error {
  ErrorCode code;
  std::string message;
};

template <typename T>
class Result {
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
