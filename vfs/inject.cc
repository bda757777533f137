#include "inject.h"

#include <cctype>
#include <cstring>
#include <memory>
#include <string_view>
#include <thread>
#include <vector>

#include "ascii.h"
#include "clock.h"
#include "context.h"
#include "inject_functions.h"
#include "own_connection.h"
#include "shim_file.h"

namespace quiesce {
namespace {

using Clock = std::chrono::steady_clock;


// The authorizer's state: what it allows right now, and why it said no.
struct Guard {
  bool allow_ddl = false;
  const std::vector<std::string>* extra_functions = nullptr;
  bool own_statement = false;  // quiesce's BEGIN/COMMIT/ROLLBACK
  std::string denied;          // the first refusal, for the error message
};

bool IsDdl(int action) {
  switch (action) {
    case SQLITE_CREATE_INDEX: case SQLITE_CREATE_TABLE:
    case SQLITE_CREATE_TEMP_INDEX: case SQLITE_CREATE_TEMP_TABLE:
    case SQLITE_CREATE_TEMP_TRIGGER: case SQLITE_CREATE_TEMP_VIEW:
    case SQLITE_CREATE_TRIGGER: case SQLITE_CREATE_VIEW:
    case SQLITE_DROP_INDEX: case SQLITE_DROP_TABLE:
    case SQLITE_DROP_TEMP_INDEX: case SQLITE_DROP_TEMP_TABLE:
    case SQLITE_DROP_TEMP_TRIGGER: case SQLITE_DROP_TEMP_VIEW:
    case SQLITE_DROP_TRIGGER: case SQLITE_DROP_VIEW:
    case SQLITE_ALTER_TABLE: case SQLITE_REINDEX: case SQLITE_ANALYZE:
      return true;
    default:
      return false;
  }
}

std::string_view Text(const char* s) { return s ? s : ""; }


int Authorize(void* arg, int action, const char* a1, const char* a2,
              const char* /*db*/, const char* /*trigger*/) {
  Guard& g = *static_cast<Guard*>(arg);
  std::string why;
  switch (action) {
    case SQLITE_ATTACH:
    case SQLITE_DETACH:
      why = "ATTACH and DETACH (pass a staged database instead)";
      break;
    case SQLITE_TRANSACTION:
    case SQLITE_SAVEPOINT:
      if (g.own_statement) return SQLITE_OK;
      why = "transaction statements (the injection is one transaction)";
      break;
    case SQLITE_FUNCTION:
      if (!InjectFunctionAllowed(Text(a2), *g.extra_functions)) {
        why = "the function " + std::string(Text(a2)) +
              " (not on the list of functions an injection may call; the "
              "host can add it with QUIESCE_INJECT_FUNCTIONS)";
      }
      break;
    case SQLITE_CREATE_VTABLE:
    case SQLITE_DROP_VTABLE:
      why = "virtual tables";
      break;
    case SQLITE_PRAGMA:
      // Reading a pragma is harmless; setting one (journal_mode,
      // locking_mode, writable_schema, ...) changes the host's database.
      if (a2 != nullptr || EqualsIgnoreCase(Text(a1), "writable_schema") ||
          EqualsIgnoreCase(Text(a1), "journal_mode") ||
          EqualsIgnoreCase(Text(a1), "locking_mode")) {
        why = "PRAGMA " + std::string(Text(a1)) + " with a value";
      }
      break;
    default:
      if (IsDdl(action) && !g.allow_ddl) {
        why = "schema changes (the host does not allow DDL)";
      }
      break;
  }
  if (why.empty()) return SQLITE_OK;
  if (g.denied.empty()) g.denied = why;
  return SQLITE_DENY;
}

struct Statements {
  const SqliteApi& api;
  std::vector<sqlite3_stmt*> list;
  explicit Statements(const SqliteApi& a) : api(a) {}
  ~Statements() {
    for (sqlite3_stmt* s : list) api.finalize(s);
  }
};

Error Denied(const Guard& g) {
  return Error{ErrorCode::kForbidden, "an injection may not use " + g.denied};
}

// Binds a statement's named parameters from the request's blobs.
Result<Ok> Bind(OwnConnection& own, const InjectRequest& req,
                sqlite3_stmt* stmt) {
  const SqliteApi& api = own.api();
  const int n = api.bind_parameter_count(stmt);
  for (int i = 1; i <= n; ++i) {
    const char* name = api.bind_parameter_name(stmt, i);
    if (name == nullptr || name[0] == '?' || name[0] == '\0') {
      return Error{ErrorCode::kBadRequest,
                   "the script has an unnamed parameter: name it (:name) "
                   "and pass it as a blob"};
    }
    auto it = req.blobs.find(name + 1);
    if (it == req.blobs.end()) {
      return Error{ErrorCode::kBadRequest,
                   std::string("parameter ") + name + " has no value"};
    }
    if (api.bind_blob(stmt, i, it->second.data(),
                      static_cast<int>(it->second.size()),
                      SQLITE_STATIC) != SQLITE_OK) {
      return own.SqlError(SQLITE_ERROR, std::string("binding ") + name);
    }
  }
  return Ok{};
}

// Prepares the script's statements from *sql on, binding each, until one
// does not prepare; *sql is left at that one. Denials and bad parameters
// are final; other errors are returned for the caller to judge (a script
// that creates a table cannot prepare its use before running). Another
// process holding a lock is waited out until `until`.
Result<Ok> Prepare(OwnConnection& own, const InjectRequest& req,
                   const Guard& guard, const char** sql, Statements* out,
                   Clock::time_point until) {
  const SqliteApi& api = own.api();
  while (**sql != '\0') {
    sqlite3_stmt* stmt = nullptr;
    const char* tail = nullptr;
    const int rc = api.prepare_v2(own.handle(), *sql, -1, &stmt, &tail);
    if (rc != SQLITE_OK) {
      if (!guard.denied.empty()) return Denied(guard);
      Error e = own.SqlError(rc, "preparing the script");
      if (e.code == ErrorCode::kBusy && Clock::now() < until) {
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
        continue;
      }
      return e;
    }
    *sql = tail;
    if (stmt == nullptr) continue;  // whitespace or a comment
    out->list.push_back(stmt);
    if (auto r = Bind(own, req, stmt); !r.ok()) return r.error();
  }
  return Ok{};
}

bool Final(const Error& e) {
  return e.code == ErrorCode::kForbidden || e.code == ErrorCode::kBadRequest;
}

struct Interrupt {
  Clock::time_point at;
  const std::atomic<bool>* cancelled;
  bool fired = false;      // out of time
  bool cancelled_seen = false;
};

int ProgressCheck(void* arg) {
  auto& i = *static_cast<Interrupt*>(arg);
  if (Clock::now() >= i.at) i.fired = true;
  if (i.cancelled && i.cancelled->load()) i.cancelled_seen = true;
  return i.fired || i.cancelled_seen ? 1 : 0;
}

// Runs BEGIN IMMEDIATE; retried while another process holds the write lock
// (the host's own handles are drained and cannot).
Result<Ok> Begin(OwnConnection& own, Guard& guard, Clock::time_point until) {
  for (;;) {
    guard.own_statement = true;
    auto r = own.Exec("BEGIN IMMEDIATE");
    guard.own_statement = false;
    if (r.ok() || r.error().code != ErrorCode::kBusy) return r;
    if (Clock::now() >= until) {
      return Error{ErrorCode::kBusy,
                   "another process holds the write lock: " +
                       r.error().message};
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

Result<Ok> Attach(OwnConnection& own, const InjectRequest& req) {
  for (char c : req.attach_name) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_')) {
      return Error{ErrorCode::kBadRequest,
                   "the staged database's name must be letters, digits "
                   "and _"};
    }
  }
  if (req.attach_name.empty() || EqualsIgnoreCase(req.attach_name, "main") ||
      EqualsIgnoreCase(req.attach_name, "temp")) {
    return Error{ErrorCode::kBadRequest,
                 "the staged database needs a name other than main or temp"};
  }
  // A new descriptor of the client's file, read-only and immutable: the
  // shim never opens a path a client names.
  const std::string sql = "ATTACH 'file:/proc/self/fd/" +
                          std::to_string(req.attach_fd) +
                          "?mode=ro&immutable=1' AS " + req.attach_name;
  SetOpeningOwnConnection(true);
  auto r = own.Exec(sql.c_str());
  SetOpeningOwnConnection(false);
  if (!r.ok()) {
    return Error{ErrorCode::kBadRequest,
                 "the staged database cannot be attached: " +
                     r.error().message};
  }
  return Ok{};
}

// Loads quiesce_params from the staged database into a copy of the blobs.
Result<std::map<std::string, std::string>> StagedParams(
    OwnConnection& own, const InjectRequest& req) {
  constexpr size_t kMaxBytes = 256u << 20;
  std::map<std::string, std::string> blobs = req.blobs;
  const SqliteApi& api = own.api();
  const std::string sql =
      "SELECT name, value FROM " + req.attach_name + ".quiesce_params";
  sqlite3_stmt* stmt = nullptr;
  if (api.prepare_v2(own.handle(), sql.c_str(), -1, &stmt, nullptr) !=
      SQLITE_OK) {
    Error e{ErrorCode::kBadRequest,
            "the staged database has no usable quiesce_params table: " +
                std::string(api.errmsg(own.handle()))};
    api.finalize(stmt);
    return e;
  }
  size_t total = 0;
  int rc;
  while ((rc = api.step(stmt)) == SQLITE_ROW) {
    const char* name =
        reinterpret_cast<const char*>(api.column_text(stmt, 0));
    const void* value = api.column_blob(stmt, 1);
    const int size = api.column_bytes(stmt, 1);
    total += static_cast<size_t>(size);
    if (name == nullptr || total > kMaxBytes) {
      api.finalize(stmt);
      return Error{ErrorCode::kBadRequest,
                   "quiesce_params has a row without a name, or more than "
                   "256 MiB"};
    }
    blobs.emplace(name, std::string(static_cast<const char*>(value),
                                    static_cast<size_t>(size)));
  }
  api.finalize(stmt);
  if (rc != SQLITE_DONE) return own.SqlError(rc, "reading quiesce_params");
  return blobs;
}

// Runs a request on an open own connection: prepare, gate, run, reopen.
Result<InjectResult> InjectPrepared(Database& db, OwnConnection& own,
                                    const InjectRequest& req);

}  // namespace

Result<InjectResult> Inject(Database& db, const InjectRequest& req) {
  const DatabaseInfo info = db.Info();
  if (info.locking_mode == LockingMode::kExclusive) {
    return Error{ErrorCode::kUnsupported,
                 db.path() + " uses locking_mode=EXCLUSIVE: nothing but the "
                             "host's own connection can write it"};
  }
  auto opened = OwnConnection::Open(db);
  if (!opened.ok()) return opened.error();
  OwnConnection& own = *opened.value();
  InjectRequest with_params;
  const InjectRequest* effective = &req;
  if (req.attach_fd >= 0) {
    if (auto r = Attach(own, req); !r.ok()) return r.error();
    if (req.params_from_attachment) {
      auto blobs = StagedParams(own, req);
      if (!blobs.ok()) return blobs.error();
      with_params = req;
      with_params.blobs = std::move(blobs.value());
      effective = &with_params;
    }
  } else if (req.params_from_attachment) {
    return Error{ErrorCode::kBadRequest,
                 "params from the attachment need an attached database"};
  }
  return InjectPrepared(db, own, *effective);
}

namespace {

Result<InjectResult> InjectPrepared(Database& db, OwnConnection& own,
                                    const InjectRequest& req) {
  const SqliteApi& api = own.api();
  Guard guard;
  guard.allow_ddl = req.allow_ddl;
  guard.extra_functions = &db.context()->config().inject_functions;
  api.set_authorizer(own.handle(), Authorize, &guard);
  // Prepared before the gate closes, so a bad script costs the host
  // nothing. With DDL allowed, statements after one that needs the
  // script's own schema changes are prepared as the transaction reaches
  // them.
  Statements stmts(api);
  const char* rest = req.sql.c_str();
  Clock::time_point until = Clock::now() + db.lease_cap();
  if (req.deadline < until) until = req.deadline;
  if (auto r = Prepare(own, req, guard, &rest, &stmts, until); !r.ok()) {
    if (Final(r.error()) || !req.allow_ddl || stmts.list.empty()) {
      return r.error();
    }
  }

  // The quiescent point. Everything from here ends by `until`.
  const Clock::time_point start = Clock::now();
  until = start + db.lease_cap();
  if (req.deadline < until) until = req.deadline;
  Result<uint64_t> token =
      req.held_token != 0
          ? Result<uint64_t>(req.held_token)
          : db.CloseGate(Drain::kInject, req.readers_may_proceed, until,
                         until);
  if (!token.ok()) return token.error();
  InjectResult result;
  result.drain_us = Micros(Clock::now() - start);

  Interrupt interrupt{until, req.cancelled};
  api.progress_handler(own.handle(), 1000, ProgressCheck, &interrupt);
  Result<Ok> outcome = Begin(own, guard, until);
  if (outcome.ok()) {
    for (size_t i = 0; outcome.ok(); ++i) {
      if (i == stmts.list.size()) {
        if (*rest == '\0') break;
        outcome = Prepare(own, req, guard, &rest, &stmts, until);
        if (i == stmts.list.size()) break;
      }
      sqlite3_stmt* stmt = stmts.list[i];
      int rc;
      while ((rc = api.step(stmt)) == SQLITE_ROW) {
      }
      if (rc != SQLITE_DONE) {
        outcome = interrupt.fired
                      ? Error{ErrorCode::kTimeout,
                              "the injection ran out of time and was rolled "
                              "back"}
                  : interrupt.cancelled_seen
                      ? Error{ErrorCode::kBusy,
                              "the injection was cancelled and rolled back"}
                  : !guard.denied.empty()
                      ? Denied(guard)
                      : own.SqlError(rc, "statement " +
                                             std::to_string(result.statements +
                                                            1));
        break;
      }
      result.changes += api.changes(own.handle());
      ++result.statements;
    }
    if (outcome.ok() && stmts.list.empty()) {
      outcome = Error{ErrorCode::kBadRequest, "the script has no statement"};
    }
    guard.own_statement = true;
    if (outcome.ok() && !req.dry_run) {
      result.last_insert_rowid = api.last_insert_rowid(own.handle());
      outcome = own.Exec("COMMIT");
      result.committed = outcome.ok();
    }
    if (!result.committed) own.Rollback();
    guard.own_statement = false;
  }
  api.progress_handler(own.handle(), 0, nullptr, nullptr);
  api.set_authorizer(own.handle(), nullptr, nullptr);
  const bool intact = req.held_token != 0 ? Clock::now() < until
                                          : db.ReopenGate(token.value());
  result.gate_closed_us = Micros(Clock::now() - start);
  if (!outcome.ok()) return outcome.error();
  if (!intact && result.committed) {
    // Committed, but a host waiter reached the lease's end first: the
    // data is in, the host was held back longer than promised.
    db.context()->api().log(SQLITE_WARNING,
                            "quiesce: an injection into %s outlived its lease",
                            db.path().c_str());
  }
  // The own connection never auto-checkpoints: do it now, passively.
  if (result.committed && req.held_token == 0 &&
      db.Info().journal_mode == JournalMode::kWal) {
    // Best effort: a checkpoint that cannot run now leaves the WAL to the
    // host's next auto-checkpoint.
    static_cast<void>(own.Exec("PRAGMA wal_checkpoint(PASSIVE)"));
  }
  const DatabaseInfo after = db.Info();
  result.generation = after.generation;
  result.position = after.position;
  return result;
}

}  // namespace
}  // namespace quiesce
