// Assertions on Result<T> (vfs/result.h), in the manner of Chromium's
// EXPECT_OK and absl's status matchers:
//   ASSERT_OK(WriteSnapshot(...));
//   EXPECT_THAT(Inject(db, req), IsError(ErrorCode::kForbidden,
//                                        HasSubstr("printf")));
// A failure prints the error's code name and message.
#ifndef QUIESCE_TESTS_RESULT_MATCHERS_H_
#define QUIESCE_TESTS_RESULT_MATCHERS_H_

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "result.h"

namespace quiesce {

// So that gtest prints an Error, and a Result through it.
inline void PrintTo(const Error& error, std::ostream* os) {
  *os << ErrorCodeName(error.code) << ": " << error.message;
}
template <typename T>
void PrintTo(const Result<T>& result, std::ostream* os) {
  if (result.ok()) {
    *os << "ok";
  } else {
    PrintTo(result.error(), os);
  }
}

namespace testing {

using ::testing::_;
using ::testing::HasSubstr;

MATCHER(IsOk, negation ? "is an error" : "is ok") {
  if (arg.ok()) return true;
  *result_listener << "error " << ErrorCodeName(arg.error().code) << ": "
                   << arg.error().message;
  return false;
}

MATCHER_P2(IsError, code, message_matcher,
           std::string("is a ") + ErrorCodeName(code) + " error whose message " +
               ::testing::DescribeMatcher<std::string>(message_matcher)) {
  if (arg.ok()) {
    *result_listener << "is ok";
    return false;
  }
  if (arg.error().code != code) {
    *result_listener << "is " << ErrorCodeName(arg.error().code) << ": "
                     << arg.error().message;
    return false;
  }
  return ::testing::ExplainMatchResult(message_matcher, arg.error().message,
                                       result_listener);
}

}  // namespace testing
}  // namespace quiesce

#define EXPECT_OK(expr) EXPECT_THAT((expr), ::quiesce::testing::IsOk())
#define ASSERT_OK(expr) ASSERT_THAT((expr), ::quiesce::testing::IsOk())

#endif  // QUIESCE_TESTS_RESULT_MATCHERS_H_
