// Gecko's Cache API body ids and where their files live (dom/cache,
// DBSchema.cpp and FileUtils.cpp). Shared by the shim, which removes what
// a dead injection staged (inject_staging.h), and the bundle tools.
#ifndef QUIESCE_VFS_GECKO_BODY_ID_H_
#define QUIESCE_VFS_GECKO_BODY_ID_H_

#include <optional>
#include <string>
#include <string_view>

namespace quiesce {

// A body id is an nsID in its text form, "{xxxxxxxx-xxxx-xxxx-xxxx-
// xxxxxxxxxxxx}", lower-case hex: the only shape nsID::ToProvidedString
// produces.
bool IsBodyId(std::string_view text);

// The body's file, relative to the origin's cache directory:
// morgue/<n>/<id>.final, <n> being the id's last byte in decimal. nullopt
// for text that is not a body id (never a path to follow).
std::optional<std::string> MorguePathOfBodyId(std::string_view body_id);

}  // namespace quiesce

#endif  // QUIESCE_VFS_GECKO_BODY_ID_H_
