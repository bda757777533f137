#include "access.h"

#include <fnmatch.h>

#include <algorithm>

namespace quiesce::control {

bool PeerAllowed(const AccessPolicy& policy, const PeerCreds& peer) {
  if (policy.allow_uids.empty()) return peer.uid == policy.host_uid;
  return std::find(policy.allow_uids.begin(), policy.allow_uids.end(),
                   peer.uid) != policy.allow_uids.end();
}

Capabilities CapabilitiesFor(const AccessPolicy& policy, const PeerCreds& peer,
                             std::string_view db_path) {
  Capabilities caps;
  if (!PeerAllowed(policy, peer)) return caps;
  caps.read = true;
  if (policy.writable == "1") {
    caps.write = true;
  } else if (!policy.writable.empty()) {
    // FNM_PATHNAME: "*" stays within one directory, as in a shell.
    const std::string path(db_path);
    caps.write =
        fnmatch(policy.writable.c_str(), path.c_str(), FNM_PATHNAME) == 0;
  }
  return caps;
}

std::string WritableSummary(const AccessPolicy& policy) {
  if (policy.writable.empty()) return "none";
  if (policy.writable == "1") return "all";
  return policy.writable;
}

}  // namespace quiesce::control
