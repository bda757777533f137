// What the host may hold of injection payloads (blob parameters and
// scripts read from the client's descriptors), in total and per client.
// A job takes bytes before it reads them and gives them back when its
// request is done; a request that would go over is answered `busy` at once
// (it never waits for memory).
//
// Thread safety: every method from any thread (jobs read payloads on their
// own threads).
#ifndef QUIESCE_CONTROL_PAYLOAD_BUDGET_H_
#define QUIESCE_CONTROL_PAYLOAD_BUDGET_H_

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>

#include "mutex.h"

namespace quiesce::control {

class PayloadBudget {
 public:
  PayloadBudget(size_t total, size_t per_client)
      : total_(total), per_client_(per_client) {}

  // Takes `bytes` for `session`: empty on success, else why not.
  std::string Take(uint64_t session, size_t bytes) QUIESCE_EXCLUDES(mu_);
  void Give(uint64_t session, size_t bytes) QUIESCE_EXCLUDES(mu_);
  size_t in_use() QUIESCE_EXCLUDES(mu_);

 private:
  const size_t total_;
  const size_t per_client_;
  Mutex mu_;
  size_t used_ QUIESCE_GUARDED_BY(mu_) = 0;
  std::map<uint64_t, size_t> by_session_ QUIESCE_GUARDED_BY(mu_);
};

}  // namespace quiesce::control

#endif  // QUIESCE_CONTROL_PAYLOAD_BUDGET_H_
