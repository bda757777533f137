// The codec alone: what decodes as a request, what is refused and why, and
// that every encoded message decodes back to what was meant.
#include "codec.h"

#include <gtest/gtest.h>

#include <string>

#include "result_matchers.h"

namespace quiesce::control {
namespace {

using quiesce::testing::IsError;
using ::testing::HasSubstr;

TEST(DecodeRequest, AcceptsMinimalRequest) {
  Request r;
  DecodeError e;
  ASSERT_TRUE(DecodeRequest(R"({"id":7,"op":"list"})", &r, &e)) << e.message;
  EXPECT_EQ(r.id, 7);
  EXPECT_EQ(r.op, "list");
  EXPECT_EQ(r.fds, 0);
}

TEST(DecodeRequest, KeepsArgumentsAndDeclaredFds) {
  Request r;
  DecodeError e;
  ASSERT_TRUE(DecodeRequest(R"({"op":"x","id":1,"db":"/a b","fds":2})", &r, &e));
  EXPECT_EQ(r.fds, 2);
  EXPECT_EQ(r.args["db"], "/a b");
}

struct Bad {
  const char* line;
  bool has_id;
};

class DecodeRequestRefuses : public ::testing::TestWithParam<Bad> {};

TEST_P(DecodeRequestRefuses, WithAMessage) {
  Request r;
  DecodeError e;
  EXPECT_FALSE(DecodeRequest(GetParam().line, &r, &e));
  EXPECT_FALSE(e.message.empty());
  EXPECT_EQ(e.id.has_value(), GetParam().has_id) << e.message;
}

INSTANTIATE_TEST_SUITE_P(
    Lines, DecodeRequestRefuses,
    ::testing::Values(Bad{"", false}, Bad{"{", false}, Bad{"[]", false},
                      Bad{"42", false}, Bad{R"({"op":"list"})", false},
                      Bad{R"({"id":"1","op":"list"})", false},
                      Bad{R"({"id":-1,"op":"list"})", false},
                      Bad{R"({"id":1.5,"op":"list"})", false},
                      Bad{R"({"id":18446744073709551615,"op":"list"})", false},
                      Bad{R"({"id":3})", true},
                      Bad{R"({"id":3,"op":7})", true},
                      Bad{R"({"id":3,"op":"x","fds":-1})", true},
                      Bad{R"({"id":3,"op":"x","fds":9})", true},
                      Bad{R"({"id":3,"op":"x","fds":"2"})", true},
                      Bad{R"({"id":3,"op":"x","fds":18446744073709551615})",
                          true},
                      Bad{"{\"id\":1,\"op\":\"x\"}garbage", false}));

TEST(DecodeRequest, RefusesDeepNestingBeforeParsing) {
  std::string deep = R"({"id":1,"op":"x","a":)";
  for (int i = 0; i < 100000; ++i) deep += '[';
  Request r;
  DecodeError e;
  EXPECT_FALSE(DecodeRequest(deep, &r, &e));
  EXPECT_NE(e.message.find("nested"), std::string::npos);
}

TEST(DecodeRequest, BracketsInsideStringsDoNotCountAsNesting) {
  const std::string line =
      R"({"id":1,"op":"x","s":")" + std::string(100, '[') + R"(\"]"})";
  Request r;
  DecodeError e;
  EXPECT_TRUE(DecodeRequest(line, &r, &e)) << e.message;
}

TEST(Encode, RepliesPutIdFirstAndEndInNewline) {
  EXPECT_EQ(EncodeOk(3, json{{"a", 1}}), "{\"id\":3,\"ok\":true,\"result\":{\"a\":1}}\n");
  EXPECT_EQ(EncodeError(std::nullopt, ErrorCode::kBadRequest, "no"),
            "{\"id\":null,\"ok\":false,\"error\":{\"code\":\"bad_request\","
            "\"message\":\"no\"}}\n");
  EXPECT_EQ(EncodeEvent(4, "commit", json{{"db", 2}}),
            "{\"id\":4,\"event\":\"commit\",\"db\":2}\n");
  EXPECT_EQ(EncodeEvent(4, "end", json::object()),
            "{\"id\":4,\"event\":\"end\"}\n");
}

TEST(Encode, RequestRoundTripsThroughTheDecoder) {
  const std::string line =
      EncodeRequest(9, "status", json{{"db", 12}, {"id", 1}}, 2);
  ASSERT_EQ(line.back(), '\n');
  Request r;
  DecodeError e;
  ASSERT_TRUE(DecodeRequest(line.substr(0, line.size() - 1), &r, &e));
  EXPECT_EQ(r.id, 9);  // the args' own "id" does not override the request's
  EXPECT_EQ(r.op, "status");
  EXPECT_EQ(r.fds, 2);
  EXPECT_EQ(r.args["db"], 12);
}

TEST(Encode, InvalidUtf8IsReplacedNotThrown) {
  const std::string bad_path = "/tmp/\xff\xfe.db";
  const std::string line = EncodeOk(1, json{{"path", bad_path}});
  const Result<Message> m = DecodeMessage(line.substr(0, line.size() - 1));
  ASSERT_OK(m);
  EXPECT_EQ(m.value().result["path"], "/tmp/\xef\xbf\xbd\xef\xbf\xbd.db");
}

TEST(DecodeMessage, RepliesErrorsAndEvents) {
  const Result<Message> reply = DecodeMessage(EncodeOk(1, json{{"x", 2}}));
  ASSERT_OK(reply);
  EXPECT_FALSE(reply.value().is_event);
  EXPECT_TRUE(reply.value().ok);
  EXPECT_EQ(reply.value().id, 1);
  EXPECT_EQ(reply.value().result["x"], 2);

  const Result<Message> error =
      DecodeMessage(EncodeError(5, ErrorCode::kNotFound, "gone"));
  ASSERT_OK(error);
  EXPECT_FALSE(error.value().ok);
  EXPECT_EQ(error.value().error_code, "not_found");
  EXPECT_EQ(error.value().error_message, "gone");

  const Result<Message> event =
      DecodeMessage(EncodeEvent(6, "commit", json{{"seq", 3}}));
  ASSERT_OK(event);
  EXPECT_TRUE(event.value().is_event);
  EXPECT_EQ(event.value().event, "commit");
  EXPECT_EQ(event.value().body["seq"], 3);

  EXPECT_THAT(DecodeMessage(R"({"id":1})"),
              IsError(ErrorCode::kBadRequest, HasSubstr("neither a reply")));
  EXPECT_THAT(DecodeMessage(R"({"id":1,"ok":false})"),
              IsError(ErrorCode::kBadRequest, HasSubstr("without an error")));
  EXPECT_THAT(DecodeMessage(R"({"event":"commit"})"),
              IsError(ErrorCode::kBadRequest, HasSubstr("needs a string")));
}

TEST(ErrorCodes, NamesRoundTrip) {
  for (int i = 0; i <= static_cast<int>(ErrorCode::kInternal); ++i) {
    const auto code = static_cast<ErrorCode>(i);
    EXPECT_EQ(ErrorCodeFromName(ErrorCodeName(code)), code);
  }
  EXPECT_FALSE(ErrorCodeFromName("nope").has_value());
}

}  // namespace
}  // namespace quiesce::control
