// The table of operations the control server answers, with their help
// text. Each handler runs on the server thread, gets the decoded request
// and the session it came from, and returns a reply; it must return
// quickly (work that takes long belongs on a worker that replies later).
//
// Adding an operation: write a handler, add a row to the table in
// handlers.cc, document it in docs/protocol.md.
#ifndef QUIESCE_CONTROL_HANDLERS_H_
#define QUIESCE_CONTROL_HANDLERS_H_

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "access.h"
#include "codec.h"
#include "context.h"
#include "result.h"
#include "server_limits.h"
#include "session.h"
#include "unique_fd.h"

namespace quiesce::control {

// What a handler answers: a result to send now, or that a job it started
// sends the reply later. A failure is an Error (vfs/result.h), sent as the
// protocol's typed error: host code has one error type.
struct Reply {
  json result = json::object();
  bool deferred = false;  // a job replies later
};
using Outcome = Result<Reply>;

inline Outcome Answer(json result) { return Reply{std::move(result), false}; }

// What a handler may see and touch.
class Jobs;
class PayloadBudget;

struct Call {
  Context* context;
  Jobs& jobs;
  PayloadBudget& payloads;
  const AccessPolicy& policy;
  const ServerLimits& limits;
  Session& session;
  const Request& request;
  std::vector<UniqueFd> fds;  // the request's descriptors, in order
};

struct Operation {
  const char* name;
  const char* help;      // one line, shown by hello and quiescectl
  int64_t max_fds;       // descriptors the request may carry
  Outcome (*run)(Call& call);
};

const std::vector<Operation>& Operations();
const Operation* FindOperation(std::string_view name);

// The database a request names in its "db" field: a numeric id from list,
// or the canonical path; not_found or forbidden otherwise.
Result<std::shared_ptr<Database>> ResolveDatabase(const Call& call);

// ResolveDatabase, for operations that need every connection to the
// database in the shim's sight (snapshot, hold, inject): a database that
// the process also has open out of the shim's sight (opened before an
// attach) is refused as unsupported (untracked.h).
Result<std::shared_ptr<Database>> ResolveTrackedDatabase(const Call& call);

}  // namespace quiesce::control

#endif  // QUIESCE_CONTROL_HANDLERS_H_
