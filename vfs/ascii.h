// ASCII case folding for SQL keywords and names (SQLite folds only ASCII).
#ifndef QUIESCE_VFS_ASCII_H_
#define QUIESCE_VFS_ASCII_H_

#include <string>
#include <string_view>

namespace quiesce {

inline char AsciiLower(char c) {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

inline std::string AsciiLower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = AsciiLower(c);
  return out;
}

inline bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (AsciiLower(a[i]) != AsciiLower(b[i])) return false;
  }
  return true;
}

}  // namespace quiesce

#endif  // QUIESCE_VFS_ASCII_H_
