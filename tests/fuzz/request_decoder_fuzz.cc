// Fuzzes the request decoder (every line a client sends reaches it) and
// the message decoder: no crash, no exception, and a decoded request
// re-encodes to one that decodes the same.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "codec.h"

using quiesce::control::DecodeError;
using quiesce::control::DecodeMessage;
using quiesce::control::DecodeRequest;
using quiesce::control::EncodeRequest;
using quiesce::Result;
using quiesce::control::Message;
using quiesce::control::Request;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view line(reinterpret_cast<const char*>(data), size);
  Request request;
  DecodeError error;
  if (DecodeRequest(line, &request, &error)) {
    const std::string again =
        EncodeRequest(request.id, request.op, request.args, request.fds);
    Request round;
    if (again.empty() ||
        !DecodeRequest(std::string_view(again).substr(0, again.size() - 1),
                       &round, &error) ||
        round.id != request.id || round.fds != request.fds ||
        // Invalid UTF-8 in op is replaced when encoding: compare only when
        // nothing was replaced.
        (round.op != request.op &&
         round.op.find("\xef\xbf\xbd") == std::string::npos)) {
      std::abort();
    }
  } else if (error.message.empty()) {
    std::abort();  // every refusal says why
  }
  const Result<Message> message = DecodeMessage(line);
  if (!message.ok() && message.error().message.empty()) {
    std::abort();  // every refusal says why
  }
  return 0;
}
