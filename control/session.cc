#include "session.h"

namespace quiesce::control {

Session::~Session() {
  for (auto& hook : hooks_) {
    try {
      hook();
    } catch (...) {
      // A hook that fails must not keep the others from running.
    }
  }
}

}  // namespace quiesce::control
