// How Gecko's Cache API names things on disk (dom/cache/DBSchema.cpp,
// FileUtils.cpp): body ids, their morgue paths, cache names in `storage.key`.
#ifndef QUIESCE_TOOLS_BUNDLE_GECKO_NAMES_H_
#define QUIESCE_TOOLS_BUNDLE_GECKO_NAMES_H_

#include <optional>
#include <string>
#include <string_view>

#include "gecko_body_id.h"

namespace quiesce::bundle {

// Body ids and their morgue paths: the shim shares them
// (vfs/gecko_body_id.h).
using quiesce::IsBodyId;
using quiesce::MorguePathOfBodyId;

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
