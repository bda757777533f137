// The wire protocol's messages, encoded and decoded without any I/O.
//
// One message is one line of JSON (the newline is added by the encoders and
// removed by framing before decoding):
//   request  {"id":N,"op":"...",...}            (+ "fds":K when it carries
//                                                 descriptors)
//   reply    {"id":N,"ok":true,"result":{...}}
//            {"id":N,"ok":false,"error":{"code":"...","message":"..."}}
//   event    {"id":N,"event":"...",...}          (streamed for request N)
//
// Nothing here throws: parsing runs with exceptions off, and every other
// nlohmann call that could throw is caught inside, because this code runs
// in the host. Thread safety: free functions, no shared state.
#ifndef QUIESCE_CONTROL_CODEC_H_
#define QUIESCE_CONTROL_CODEC_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "result.h"

namespace quiesce::control {

using nlohmann::json;

// The protocol version this code speaks; negotiated by "hello".
inline constexpr int64_t kProtocolVersion = 1;
// Deepest nesting of arrays and objects a request may have: the decoder
// rejects deeper input before parsing it, so no recursion follows a
// client's choice.
inline constexpr int kMaxDepth = 16;
// Most descriptors one request may declare.
inline constexpr int64_t kMaxRequestFds = 8;
// Request ids are JSON integers a double can hold exactly (scripts in
// JavaScript or Python may produce them).
inline constexpr int64_t kMaxId = (int64_t{1} << 53);

// Error codes are host code's own (vfs/result.h): one enum, one list of
// names, no conversion at the wire.
using quiesce::ErrorCode;
using quiesce::ErrorCodeFromName;
using quiesce::ErrorCodeName;

struct Request {
  int64_t id = 0;
  std::string op;
  json args;        // the whole request object, for the handler's fields
  int64_t fds = 0;  // descriptors declared to travel with this line
};

// Why a line is not a request; id is set when the line had a usable one,
// so the error reply can name it.
struct DecodeError {
  std::optional<int64_t> id;
  std::string message;
};

bool DecodeRequest(std::string_view line, Request* out, DecodeError* error);

// Encoders return one complete line, newline included. Strings that are not
// valid UTF-8 (a database path may be any bytes) are encoded with U+FFFD in
// place of the bad bytes.
std::string EncodeRequest(int64_t id, std::string_view op, const json& args,
                          int64_t fds = 0);
std::string EncodeOk(int64_t id, const json& result);
std::string EncodeError(std::optional<int64_t> id, ErrorCode code,
                        std::string_view message);
std::string EncodeEvent(int64_t id, std::string_view event,
                        const json& fields);

// A reply or an event, as a client sees it.
struct Message {
  bool is_event = false;
  std::optional<int64_t> id;  // null in a reply to an undecodable request
  // Replies:
  bool ok = false;
  json result;                // when ok
  std::string error_code;     // when !ok: as sent (may be a newer code)
  std::string error_message;
  // Events: the name and the whole object.
  std::string event;
  json body;
};

// A line from the host (newline dropped); kBadRequest, saying why, when it
// is not a reply or an event.
Result<Message> DecodeMessage(std::string_view line);

}  // namespace quiesce::control

#endif  // QUIESCE_CONTROL_CODEC_H_
