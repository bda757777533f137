#include "handlers.h"

#include <unistd.h>

#include <algorithm>

#include "describe.h"
#include "quiesce_ops.h"
#include "untracked.h"

namespace quiesce::control {
namespace {

bool CanRead(const Call& call, const Database& db) {
  return CapabilitiesFor(call.policy, call.session.peer(), db.path()).read;
}

json PeerJson(const PeerCreds& peer) {
  return {{"pid", peer.pid}, {"uid", peer.uid}, {"gid", peer.gid}};
}

Outcome Hello(Call& call) {
  int64_t version = kProtocolVersion;
  if (const auto it = call.request.args.find("version");
      it != call.request.args.end()) {
    if (!it->is_number_integer()) {
      return Error{ErrorCode::kBadRequest, "\"version\" must be an integer"};
    }
    // A client names the highest version it speaks; both use the lower.
    version = std::min(it->get<int64_t>(), kProtocolVersion);
    if (version < 1) {
      return Error{ErrorCode::kUnsupported,
                   "this host speaks protocol version 1 only"};
    }
  }
  json ops = json::array();
  for (const Operation& op : Operations()) {
    ops.push_back({{"op", op.name}, {"help", op.help}});
  }
  return Answer({
      {"version", version},
      {"server", "quiesce"},
      {"pid", getpid()},
      {"uid", call.policy.host_uid},
      {"peer", PeerJson(call.session.peer())},
      {"capabilities",
       {{"read", PeerAllowed(call.policy, call.session.peer())},
        {"write", WritableSummary(call.policy)}}},
      {"ops", std::move(ops)},
      {"limits",
       {{"max_line", call.limits.max_line},
        {"max_request_fds", kMaxRequestFds},
        {"max_inline_sql", kMaxInlineSql},
        {"max_payload_value", call.limits.max_payload_value},
        {"max_payload_request", call.limits.max_payload_request},
        {"max_payload_client", call.limits.max_payload_client},
        {"max_payload_total", call.limits.max_payload_total},
        {"idle_timeout_ms", call.limits.idle_timeout.count()},
        {"request_timeout_ms", call.limits.request_timeout.count()}}},
  });
}

Outcome List(Call& call) {
  auto dbs = call.context->Databases();
  std::sort(dbs.begin(), dbs.end(),
            [](const auto& a, const auto& b) { return a->id() < b->id(); });
  json rows = json::array();
  for (const auto& db : dbs) {
    if (CanRead(call, *db)) rows.push_back(DescribeSummary(db->Info()));
  }
  // Databases open out of the shim's sight (opened before an attach).
  json untracked = json::array();
  for (const UntrackedDatabase& u : ScanUntracked(*call.context)) {
    if (!CapabilitiesFor(call.policy, call.session.peer(), u.path).read) {
      continue;
    }
    untracked.push_back(json{{"path", u.path},
                         {"files", json(u.files)},
                         {"descriptors", u.descriptors},
                         {"partly_tracked", u.partly_tracked},
                         {"reason", std::string(kOpenedBeforeAttach)}});
  }
  return Answer(
      {{"databases", std::move(rows)}, {"untracked", std::move(untracked)}});
}

Outcome Status(Call& call) {
  const auto db = ResolveDatabase(call);
  if (!db.ok()) return db.error();
  return Answer(DescribeStatus(db.value()->Info()));
}

Outcome WatchOp(Call& call) {
  Session& session = call.session;
  if (session.watches.size() >= call.limits.max_watches) {
    return Error{ErrorCode::kBusy, "this session already has " +
                                       std::to_string(session.watches.size()) +
                                       " watches"};
  }
  Watch watch;
  watch.request_id = call.request.id;
  for (const Watch& w : session.watches) {
    if (w.request_id == watch.request_id) {
      return Error{ErrorCode::kBadRequest,
                   "a watch with this id is already running"};
    }
  }
  json watching = json::array();
  if (call.request.args.contains("db")) {
    const auto resolved = ResolveDatabase(call);
    if (!resolved.ok()) return resolved.error();
    const std::shared_ptr<Database>& db = resolved.value();
    watch.db = db->id();
    watch.cursors[db->id()] = {db, db->last_event_seq()};
    watching.push_back(db->id());
  } else {
    // Databases opened later are picked up as they appear, from their
    // first event.
    for (const auto& db : call.context->Databases()) {
      if (!CanRead(call, *db)) continue;
      watch.cursors[db->id()] = {db, db->last_event_seq()};
      watching.push_back(db->id());
    }
  }
  session.watches.push_back(std::move(watch));
  return Answer({{"watching", std::move(watching)},
                 {"all", !call.request.args.contains("db")}});
}

Outcome Unwatch(Call& call) {
  const auto it = call.request.args.find("watch");
  if (it == call.request.args.end() || !it->is_number_integer()) {
    return Error{ErrorCode::kBadRequest,
                 "\"watch\" must be the id of the watch request"};
  }
  const int64_t watch_id = it->get<int64_t>();
  auto& watches = call.session.watches;
  const auto found =
      std::find_if(watches.begin(), watches.end(),
                   [&](const Watch& w) { return w.request_id == watch_id; });
  if (found == watches.end()) {
    return Error{ErrorCode::kNotFound,
                 "no watch with id " + std::to_string(watch_id)};
  }
  watches.erase(found);
  return Answer({{"stopped", watch_id}});
}

}  // namespace

const std::vector<Operation>& Operations() {
  static const std::vector<Operation> ops = [] {
    std::vector<Operation> all = {
      {"hello",
       "protocol version (send your highest as \"version\"), host pid, "
       "capabilities, operations and limits",
       0, Hello},
      {"list", "every database open through the shim", 0, List},
      {"status", "one database (\"db\": id or path) in detail: counters, "
                 "handles and their locks",
       0, Status},
      {"watch",
       "stream commit events of one database (\"db\") or of all; events "
       "carry this request's id",
       0, WatchOp},
      {"unwatch", "stop the watch whose request id is \"watch\"", 0, Unwatch},
    };
    for (const Operation& op : QuiesceOperations()) all.push_back(op);
    return all;
  }();
  return ops;
}

const Operation* FindOperation(std::string_view name) {
  for (const Operation& op : Operations()) {
    if (name == op.name) return &op;
  }
  return nullptr;
}

Result<std::shared_ptr<Database>> ResolveDatabase(const Call& call) {
  const auto it = call.request.args.find("db");
  std::shared_ptr<Database> db;
  std::string named;
  if (it == call.request.args.end()) {
    return Error{ErrorCode::kBadRequest,
                 "missing \"db\": an id from list, or a path"};
  }
  if (it->is_number_unsigned()) {
    db = call.context->FindById(it->get<uint64_t>());
    named = "id " + std::to_string(it->get<uint64_t>());
  } else if (it->is_string()) {
    // Compared with the paths the shim knows: a client's path is never
    // opened nor resolved here.
    named = it->get<std::string>();
    db = call.context->FindByPath(named);
  } else {
    return Error{ErrorCode::kBadRequest,
                 "\"db\" must be an id from list, or a path"};
  }
  if (!db) {
    for (const UntrackedDatabase& u : ScanUntracked(*call.context)) {
      if (u.path == named) {
        return Error{ErrorCode::kUnsupported,
                     named + ": " + kOpenedBeforeAttach};
      }
    }
    return Error{ErrorCode::kNotFound, "no open database with " + named};
  }
  if (!CanRead(call, *db)) {
    return Error{ErrorCode::kForbidden, "this peer may not read " + db->path()};
  }
  return db;
}

Result<std::shared_ptr<Database>> ResolveTrackedDatabase(const Call& call) {
  auto db = ResolveDatabase(call);
  if (!db.ok()) return db;
  if (auto r = CheckFullyTracked(*db.value(), call.context->attached());
      !r.ok()) {
    return Error{ErrorCode::kUnsupported, r.error().message};
  }
  return db;
}

}  // namespace quiesce::control
