// Shared between the flap_*.cc files; not part of the library's API.
#ifndef QUIESCE_TOOLS_BUNDLE_FLAP_INTERNAL_H_
#define QUIESCE_TOOLS_BUNDLE_FLAP_INTERNAL_H_

#include <string>
#include <string_view>
#include <vector>

#include "digest.h"

namespace quiesce::bundle::flap {

// SHA-256 giving the raw 32 bytes (the digest chain feeds them on).
class Sha256Raw {
 public:
  void Update(std::string_view data) { sha_.Update(data); }
  std::string Finish() { return HexDecode(sha_.FinishHex()).value_or(""); }

 private:
  Sha256 sha_;
};

// The 24 `entries` columns of Appelflap's schema 28, in <i>.json order.
const std::vector<std::string>& AppelflapEntryColumns();

}  // namespace quiesce::bundle::flap

#endif  // QUIESCE_TOOLS_BUNDLE_FLAP_INTERNAL_H_
