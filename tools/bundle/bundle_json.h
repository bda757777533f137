// The JSON documents inside a bundle (docs/bundles.md): META.json,
// SECURITY_INFO.json and one <i>.json per entry. Pure conversions, no I/O.
#ifndef QUIESCE_TOOLS_BUNDLE_BUNDLE_JSON_H_
#define QUIESCE_TOOLS_BUNDLE_BUNDLE_JSON_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "cache_bundle.h"

namespace quiesce::bundle {

inline constexpr char kFormatName[] = "quiesce-cache-bundle";
inline constexpr int64_t kFormatVersion = 1;
inline constexpr char kMetaPart[] = "META.json";
inline constexpr char kSecurityInfoPart[] = "SECURITY_INFO.json";

// Part names: "<i>.json", "<i>.request_body", "<i>.response_body".
std::string EntryPartName(size_t index);
std::string BodyPartName(size_t index, bool request);

std::string MetaToJson(const BundleMeta& meta);
absl::StatusOr<BundleMeta> MetaFromJson(std::string_view text);

std::string SecurityInfoToJson(const std::map<int64_t, SecurityInfo>& map);
absl::StatusOr<std::map<int64_t, SecurityInfo>> SecurityInfoFromJson(
    std::string_view text);

std::string EntryToJson(const BundleEntry& entry);
absl::StatusOr<BundleEntry> EntryFromJson(std::string_view text);

}  // namespace quiesce::bundle

#endif  // QUIESCE_TOOLS_BUNDLE_BUNDLE_JSON_H_
