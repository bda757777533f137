#include "gecko_body_id.h"

namespace quiesce {
namespace {

int LowerHexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

}  // namespace

bool IsBodyId(std::string_view text) {
  if (text.size() != 38 || text.front() != '{' || text.back() != '}') {
    return false;
  }
  for (size_t i = 1; i < 37; ++i) {
    const bool dash = i == 9 || i == 14 || i == 19 || i == 24;
    if (dash ? text[i] != '-' : LowerHexValue(text[i]) < 0) return false;
  }
  return true;
}

std::optional<std::string> MorguePathOfBodyId(std::string_view body_id) {
  if (!IsBodyId(body_id)) return std::nullopt;
  const int last_byte = LowerHexValue(body_id[35]) * 16 +
                        LowerHexValue(body_id[36]);
  std::string path = "morgue/" + std::to_string(last_byte) + "/";
  path.append(body_id);
  path += ".final";
  return path;
}

}  // namespace quiesce
