#include "session.h"

namespace quiesce::control {

Session::~Session() {
  // Every lease still open ends with its session: its gate reopens.
  for (auto& [id, lease] : leases) {
    try {
      lease->End();
    } catch (...) {
    }
  }
  leases.clear();
  for (auto& hook : hooks_) {
    try {
      hook();
    } catch (...) {
      // A hook that fails must not keep the others from running.
    }
  }
}

void Session::PruneLeases() {
  for (auto it = leases.begin(); it != leases.end();) {
    const Lease::Outcome outcome = it->second->outcome();
    if (outcome == Lease::Outcome::kRunning) {
      ++it;
      continue;
    }
    if (outcome == Lease::Outcome::kRevoked) {
      revoked_holds.push_back(it->first);
      if (revoked_holds.size() > kRevokedRemembered) revoked_holds.pop_front();
    }
    it = leases.erase(it);
  }
}

}  // namespace quiesce::control
