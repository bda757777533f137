// Fuzzes the line splitter with input cut into arbitrary pieces: lines
// never exceed the cap nor contain a newline, every byte comes out in a
// line exactly once, stream offsets agree, and between appends the buffer
// holds at most 2 * max_line bytes (LineBuffer::buffered).
#include <cstdint>
#include <algorithm>
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
      // The line is the stream's bytes up to its newline (a '\r' before
      // the newline dropped).
      const size_t nl = stream.find('\n', consumed);
      if (nl == std::string_view::npos) std::abort();
      std::string_view raw = stream.substr(consumed, nl - consumed);
      if (!raw.empty() && raw.back() == '\r') raw.remove_suffix(1);
      if (raw != line) std::abort();
      consumed = nl + 1;
      if (buffer.line_end() != consumed) std::abort();
    }
    if (buffer.buffered() > 2 * max_line) std::abort();
    if (buffer.received() != std::min(stream.size(), at + piece)) std::abort();
  }
  // What is left is the last line without its newline.
  std::string rest;
  const LineBuffer::Next last = buffer.PopRest(&rest);
  if (consumed == stream.size()) {
    if (last != LineBuffer::Next::kNeedMore) std::abort();
  } else if (last == LineBuffer::Next::kLine) {
    std::string_view raw = stream.substr(consumed);
    if (!raw.empty() && raw.back() == '\r') raw.remove_suffix(1);
    if (raw != rest || rest.size() > max_line) std::abort();
  } else if (last != LineBuffer::Next::kTooLong) {
    std::abort();
  }
  return 0;
}
