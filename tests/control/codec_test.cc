// The codec alone: what decodes as a request, what is refused and why, and
// that every encoded message decodes back to what was meant.
#include "codec.h"

#include <gtest/gtest.h>

#include <string>

namespace quiesce::control {
namespace {

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
  Message m;
  std::string error;
  ASSERT_TRUE(DecodeMessage(line.substr(0, line.size() - 1), &m, &error))
      << error;
  EXPECT_EQ(m.result["path"], "/tmp/\xef\xbf\xbd\xef\xbf\xbd.db");
}

TEST(DecodeMessage, RepliesErrorsAndEvents) {
  Message m;
  std::string error;
  ASSERT_TRUE(DecodeMessage(EncodeOk(1, json{{"x", 2}}), &m, &error));
  EXPECT_FALSE(m.is_event);
  EXPECT_TRUE(m.ok);
  EXPECT_EQ(m.id, 1);
  EXPECT_EQ(m.result["x"], 2);

  ASSERT_TRUE(DecodeMessage(EncodeError(5, ErrorCode::kNotFound, "gone"), &m,
                            &error));
  EXPECT_FALSE(m.ok);
  EXPECT_EQ(m.error_code, "not_found");
  EXPECT_EQ(m.error_message, "gone");

  ASSERT_TRUE(DecodeMessage(EncodeEvent(6, "commit", json{{"seq", 3}}), &m,
                            &error));
  EXPECT_TRUE(m.is_event);
  EXPECT_EQ(m.event, "commit");
  EXPECT_EQ(m.body["seq"], 3);

  EXPECT_FALSE(DecodeMessage(R"({"id":1})", &m, &error));
  EXPECT_FALSE(DecodeMessage(R"({"id":1,"ok":false})", &m, &error));
  EXPECT_FALSE(DecodeMessage(R"({"event":"commit"})", &m, &error));
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
