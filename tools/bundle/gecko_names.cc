#include "gecko_names.h"

#include <cstdint>

#include "digest.h"

namespace quiesce::bundle {

namespace {

void AppendUtf8(uint32_t cp, std::string& out) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

void AppendUtf16Le(uint32_t unit, std::string& out) {
  out.push_back(static_cast<char>(unit & 0xFF));
  out.push_back(static_cast<char>(unit >> 8));
}

}  // namespace

std::optional<std::string> NewBodyId() {
  std::optional<std::string> random = RandomBytes(16);
  if (!random) return std::nullopt;
  std::string& b = *random;
  b[6] = static_cast<char>((b[6] & 0x0F) | 0x40);  // version 4
  b[8] = static_cast<char>((b[8] & 0x3F) | 0x80);  // RFC 4122 variant
  const std::string hex = HexEncode(b);
  // Appended group by group into one reserved string: a chain of
  // `"{" + std::string&&` makes GCC 12 at -O2+ report a false -Wrestrict
  // on the inlined insert (issue #17), and it allocates five times.
  std::string id;
  id.reserve(hex.size() + 6);
  id.push_back('{');
  static constexpr size_t kGroupEnds[] = {8, 12, 16, 20, 32};
  size_t begin = 0;
  for (size_t end : kGroupEnds) {
    if (begin != 0) id.push_back('-');
    id.append(hex, begin, end - begin);
    begin = end;
  }
  id.push_back('}');
  return id;
}

std::optional<std::string> Utf16LeToUtf8(std::string_view utf16le) {
  if (utf16le.size() % 2 != 0) return std::nullopt;
  std::string out;
  auto unit_at = [&](size_t i) {
    return static_cast<uint32_t>(static_cast<unsigned char>(utf16le[i])) |
           static_cast<uint32_t>(static_cast<unsigned char>(utf16le[i + 1]))
               << 8;
  };
  for (size_t i = 0; i < utf16le.size(); i += 2) {
    uint32_t unit = unit_at(i);
    if (unit >= 0xD800 && unit < 0xDC00) {
      if (i + 3 >= utf16le.size()) return std::nullopt;
      uint32_t low = unit_at(i + 2);
      if (low < 0xDC00 || low >= 0xE000) return std::nullopt;
      AppendUtf8(0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00), out);
      i += 2;
    } else if (unit >= 0xDC00 && unit < 0xE000) {
      return std::nullopt;
    } else {
      AppendUtf8(unit, out);
    }
  }
  return out;
}

std::optional<std::string> Utf8ToUtf16Le(std::string_view utf8) {
  std::string out;
  for (size_t i = 0; i < utf8.size();) {
    unsigned char lead = static_cast<unsigned char>(utf8[i]);
    size_t length = lead < 0x80 ? 1 : (lead >> 5) == 0x6 ? 2
                                  : (lead >> 4) == 0xE ? 3
                                  : (lead >> 3) == 0x1E ? 4 : 0;
    if (length == 0 || i + length > utf8.size()) return std::nullopt;
    uint32_t cp = length == 1 ? lead : lead & (0x7F >> length);
    for (size_t k = 1; k < length; ++k) {
      unsigned char c = static_cast<unsigned char>(utf8[i + k]);
      if ((c & 0xC0) != 0x80) return std::nullopt;
      cp = (cp << 6) | (c & 0x3F);
    }
    static constexpr uint32_t kMinimum[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < kMinimum[length] || cp > 0x10FFFF ||
        (cp >= 0xD800 && cp < 0xE000)) {
      return std::nullopt;  // overlong, out of range, or a surrogate
    }
    if (cp >= 0x10000) {
      AppendUtf16Le(0xD800 + ((cp - 0x10000) >> 10), out);
      AppendUtf16Le(0xDC00 + ((cp - 0x10000) & 0x3FF), out);
    } else {
      AppendUtf16Le(cp, out);
    }
    i += length;
  }
  return out;
}

}  // namespace quiesce::bundle
