// PackFlap: one cache of a database image into a signed .flap.
#include "absl/strings/str_cat.h"
#include "flap.h"

namespace quiesce::bundle::flap {

std::optional<std::string> GeckoReadableFraming(std::string_view framed) {
  return std::string(framed);
}

absl::StatusOr<FlapPackResult> PackFlap(sqlite3*, const std::filesystem::path&,
                                        std::string_view, std::string_view,
                                        const FlapPackOptions&,
                                        const std::filesystem::path&) {
  return absl::UnimplementedError("not yet");
}

}  // namespace quiesce::bundle::flap
