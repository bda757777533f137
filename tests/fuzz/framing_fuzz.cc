// Fuzzes the line splitter with input cut into arbitrary pieces: lines
// never exceed the cap nor contain a newline, and the buffer stays bounded.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "framing.h"

using quiesce::control::LineBuffer;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  // First byte: the cap; second: the piece size; the rest: the stream.
  const size_t max_line = 1 + data[0] % 64;
  const size_t piece = 1 + data[1] % 32;
  const std::string_view stream(reinterpret_cast<const char*>(data + 2),
                                size - 2);
  LineBuffer buffer(max_line);
  size_t consumed = 0;
  for (size_t at = 0; at < stream.size(); at += piece) {
    buffer.Append(stream.substr(at, piece));
    std::string line;
    for (;;) {
      const LineBuffer::Next next = buffer.Pop(&line);
      if (next == LineBuffer::Next::kNeedMore) break;
      if (next == LineBuffer::Next::kTooLong) return 0;  // the stream ends
      if (line.size() > max_line || line.find('\n') != std::string::npos) {
        std::abort();
      }
      consumed += line.size() + 1;
    }
  }
  if (consumed > stream.size() + 1) std::abort();
  return 0;
}
