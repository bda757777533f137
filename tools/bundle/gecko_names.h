// How Gecko's Cache API names things on disk (dom/cache/DBSchema.cpp,
// FileUtils.cpp): body ids, their morgue paths, cache names in `storage.key`.
#ifndef QUIESCE_TOOLS_BUNDLE_GECKO_NAMES_H_
#define QUIESCE_TOOLS_BUNDLE_GECKO_NAMES_H_

#include <optional>
#include <string>
#include <string_view>

namespace quiesce::bundle {

// A body id is an nsID in its text form, "{xxxxxxxx-xxxx-xxxx-xxxx-
// xxxxxxxxxxxx}", lower-case hex. Its file is morgue/<n>/<id>.final under
// the origin's cache directory, <n> being the id's last byte in decimal.
// Returns nullopt for text that is not a body id (never a path to follow).
std::optional<std::string> MorguePathOfBodyId(std::string_view body_id);

// A fresh random (version 4) body id; nullopt when no randomness is to be
// had.
std::optional<std::string> NewBodyId();

// Cache names are DOMStrings kept as UTF-16LE bytes in storage.key (the
// empty name as NULL). These convert from and to UTF-8; nullopt for input
// that is not valid in its encoding (a lone surrogate, bad UTF-8).
std::optional<std::string> Utf16LeToUtf8(std::string_view utf16le);
std::optional<std::string> Utf8ToUtf16Le(std::string_view utf8);

}  // namespace quiesce::bundle

#endif  // QUIESCE_TOOLS_BUNDLE_GECKO_NAMES_H_
