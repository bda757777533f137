// The operations that reach a quiescent point or a consistent copy:
// snapshot, hold, release and inject. Each checks its request on the server
// thread and hands the work to a job (jobs.h); the reply follows when the
// work is done.
#include "quiesce_ops.h"

#include <fcntl.h>
#include <malloc.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <optional>

#include "client_descriptor.h"
#include "describe.h"
#include "errno_text.h"
#include "hold.h"
#include "inject.h"
#include "jobs.h"
#include "lease.h"
#include "payload_budget.h"
#include "snapshot.h"

namespace quiesce::control {
namespace {

using std::chrono::milliseconds;

constexpr int64_t kDefaultSnapshotMs = 10 * 60 * 1000;
constexpr int64_t kMaxSnapshotMs = 60 * 60 * 1000;

// An optional integer argument within [lo, hi], into *value when present;
// bad_request when present and not such an integer.
quiesce::Result<quiesce::Ok> IntArg(const Call& call, const char* name,
                                    int64_t lo, int64_t hi, int64_t* value) {
  const auto it = call.request.args.find(name);
  if (it == call.request.args.end()) return quiesce::Ok{};
  if (!it->is_number_integer() || it->get<int64_t>() < lo ||
      it->get<int64_t>() > hi) {
    return Error{ErrorCode::kBadRequest,
                 std::string("\"") + name + "\" must be an integer from " +
                     std::to_string(lo) + " to " + std::to_string(hi)};
  }
  *value = it->get<int64_t>();
  return quiesce::Ok{};
}

// An optional boolean argument, into *value when present.
quiesce::Result<quiesce::Ok> BoolArg(const Call& call, const char* name,
                                     bool* value) {
  const auto it = call.request.args.find(name);
  if (it == call.request.args.end()) return quiesce::Ok{};
  if (!it->is_boolean()) {
    return Error{ErrorCode::kBadRequest,
                 std::string("\"") + name + "\" must be true or false"};
  }
  *value = it->get<bool>();
  return quiesce::Ok{};
}

// The first failure of several argument checks (all run, left to right).
quiesce::Result<quiesce::Ok> FirstFailure(
    std::initializer_list<quiesce::Result<quiesce::Ok>> checks) {
  for (const auto& check : checks) {
    if (!check.ok()) return check.error();
  }
  return quiesce::Ok{};
}

Result<std::shared_ptr<Database>> WritableDatabase(const Call& call) {
  auto db = ResolveTrackedDatabase(call);
  if (db.ok() &&
      !CapabilitiesFor(call.policy, call.session.peer(), db.value()->path())
           .write) {
    return Error{ErrorCode::kForbidden,
                 "this host does not let clients write " + db.value()->path() +
                     " (the host enables it with QUIESCE_WRITABLE or "
                     "quiesce_config.writable)"};
  }
  return db;
}

// Starts a job or says why not; the session counts it so it never idles
// out while its work runs.
Outcome Defer(Call& call, std::function<void(Job&)> work,
              std::shared_ptr<Job>* started = nullptr) {
  auto job = call.jobs.Start(call.session.id(), std::move(work));
  if (started) *started = job;
  if (!job) {
    return Error{ErrorCode::kBusy,
                 "the host is running as many operations as it "
                 "allows; try again"};
  }
  ++call.session.jobs_pending;
  return Reply{json::object(), /*deferred=*/true};
}

// Payload bytes a job holds, taken from the server's budget and given
// back when the job's request is done (or fails).
class PayloadHold {
 public:
  PayloadHold(PayloadBudget& budget, uint64_t session)
      : budget_(budget), session_(session) {}
  ~PayloadHold() { Release(); }
  void Release() {
    budget_.Give(session_, held_);
    held_ = 0;
  }
  PayloadHold(const PayloadHold&) = delete;
  PayloadHold& operator=(const PayloadHold&) = delete;

  quiesce::Result<quiesce::Ok> Take(size_t bytes) {
    std::string why = budget_.Take(session_, bytes);
    if (!why.empty()) {
      return Error{ErrorCode::kBusy, std::move(why)};
    }
    held_ += bytes;
    return quiesce::Ok{};
  }
  size_t held() const { return held_; }

 private:
  PayloadBudget& budget_;
  const uint64_t session_;
  size_t held_ = 0;
};

constexpr size_t kPipeChunk = 1u << 20;

std::string MiBText(size_t bytes) {
  return bytes % (1u << 20) == 0 ? std::to_string(bytes >> 20) + " MiB"
                                 : std::to_string(bytes) + " bytes";
}

// Reads a whole descriptor the client passed (a file or a pipe), at most
// `cap` bytes, by the deadline: a client that never closes its pipe costs
// a timeout, never a stuck thread; a cancel (the client went away, the
// server is shutting down) ends it at once. Every byte is taken from the
// budget before it is read; a file's size is known up front (one
// allocation of exactly that size), a pipe's is read in 1 MiB chunks
// joined at its end, so the heap never holds a doubled buffer. The
// descriptor's flags are given back as they were.
quiesce::Result<std::string> ReadAll(int fd, size_t cap, const char* what,
                                     PayloadHold& hold,
                                     Job::Clock::time_point deadline,
                                     const std::atomic<bool>* cancelled) {
  const NonBlocking nonblocking(fd);
  if (nonblocking.flags() < 0 ||
      (nonblocking.flags() & O_ACCMODE) == O_WRONLY) {
    return Error{ErrorCode::kBadRequest,
                 "a descriptor to read from is not readable"};
  }
  if (auto r = CheckCannotBlock(fd, "a descriptor to read from"); !r.ok()) {
    return r.error();
  }
  auto too_big = [&] {
    return Error{ErrorCode::kBadRequest,
                 std::string(what) + " is larger than the " + MiBText(cap) +
                     " the host reads of it (docs/protocol.md, Limits)"};
  };
  struct stat st;
  size_t expected = 0;  // a regular file's bytes from its offset
  if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
    const off_t at = lseek(fd, 0, SEEK_CUR);
    if (at >= 0 && st.st_size >= at) {
      expected = static_cast<size_t>(st.st_size - at);
    }
    if (expected > cap) return too_big();
  }
  std::vector<std::string> chunks;
  size_t total = 0;
  size_t taken = 0;  // of the budget, for this value
  if (expected > 0) {
    if (auto r = hold.Take(expected); !r.ok()) return r.error();
    taken = expected;
    chunks.emplace_back();
    chunks.back().reserve(expected);
  }
  char buf[65536];
  for (;;) {
    const ssize_t n = read(fd, buf, sizeof(buf));
    if (n > 0) {
      const size_t len = static_cast<size_t>(n);
      if (total + len > cap) return too_big();
      if (total + len > taken) {
        const size_t more =
            std::min(cap - taken, std::max(kPipeChunk, total + len - taken));
        if (auto r = hold.Take(more); !r.ok()) return r.error();
        taken += more;
        chunks.emplace_back();
        chunks.back().reserve(more);
      }
      // Fill the chunks in order, each up to its reserved capacity.
      size_t off = 0;
      for (std::string& c : chunks) {
        if (off == len) break;
        const size_t room = c.capacity() - c.size();
        if (room == 0) continue;
        const size_t put = std::min(room, len - off);
        c.append(buf + off, put);
        off += put;
      }
      total += len;
      continue;
    }
    if (n == 0) break;
    if (errno == EINTR) continue;
    if (errno != EAGAIN) {
      return Error{ErrorCode::kIoError,
                   std::string("reading a descriptor: ") + ErrnoText(errno)};
    }
    if (cancelled->load()) {
      return Error{ErrorCode::kBusy, "the injection was cancelled"};
    }
    const auto left = std::chrono::duration_cast<milliseconds>(
        deadline - Job::Clock::now());
    if (left.count() <= 0) {
      return Error{ErrorCode::kTimeout,
                   "a descriptor was not read to its end in time "
                   "(close the writing end of the pipe)"};
    }
    pollfd p{fd, POLLIN, 0};
    poll(&p, 1, static_cast<int>(std::min<int64_t>(left.count(), 100)));
  }
  if (chunks.size() == 1) return std::move(chunks.front());
  std::string data;
  data.reserve(total);
  for (std::string& c : chunks) {
    data.append(c);
    std::string().swap(c);  // each chunk goes as soon as it is copied
  }
  return data;
}

// Gives the heap's free memory back to the system after a request that
// held large payloads (glibc keeps freed memory otherwise; elsewhere, e.g.
// under Firefox's jemalloc, this is glibc's idle allocator and costs
// nothing).
void GiveMemoryBack(size_t held) {
#if defined(__GLIBC__)
  if (held >= kPipeChunk) malloc_trim(0);
#else
  (void)held;
#endif
}

json PointJson(const Database& db, const PinnedPoint& p) {
  return {{"db", db.id()},
          {"path", db.path()},
          {"generation", p.generation},
          {"position", DescribePosition(p.position)},
          {"page_size", p.page_size},
          {"db_pages", p.db_pages}};
}

// --- snapshot ---------------------------------------------------------------

Outcome SnapshotOp(Call& call) {
  auto resolved = ResolveDatabase(call);
  if (!resolved.ok()) return resolved.error();
  std::shared_ptr<Database> db = std::move(resolved.value());
  if (call.fds.size() != 1) {
    return Error{ErrorCode::kBadRequest,
                 "snapshot needs one descriptor to write the image "
                 "to (\"fds\":1)"};
  }
  const int fl = fcntl(call.fds[0].get(), F_GETFL);
  if (fl < 0 || (fl & O_ACCMODE) == O_RDONLY) {
    return Error{ErrorCode::kBadRequest,
                 "the snapshot's descriptor is not open for writing"};
  }
  if (auto r = CheckCannotBlock(call.fds[0].get(), "the snapshot's descriptor");
      !r.ok()) {
    return r.error();
  }
  int64_t timeout_ms = kDefaultSnapshotMs;
  bool progress = false;
  if (auto r = FirstFailure(
          {IntArg(call, "timeout_ms", 1, kMaxSnapshotMs, &timeout_ms),
           BoolArg(call, "progress", &progress)});
      !r.ok()) {
    return r.error();
  }
  // After the request's own checks: a client's mistakes come first.
  if (auto r = ResolveTrackedDatabase(call); !r.ok()) return r.error();
  auto fd = std::make_shared<UniqueFd>(std::move(call.fds[0]));
  const int64_t id = call.request.id;
  return Defer(call, [db, fd, id, timeout_ms, progress](Job& job) {
    SnapshotOptions options;
    options.deadline = Job::Clock::now() + milliseconds(timeout_ms);
    options.cancelled = job.cancel_flag();
    // The first event goes out with the first pages: from then on the
    // snapshot stands at its point (a client holding the point may let it
    // go); the rest every 200 ms.
    std::optional<Job::Clock::time_point> last;
    if (progress) {
      options.progress = [&](uint32_t done, uint32_t total) {
        const auto now = Job::Clock::now();
        if (last && now - *last < milliseconds(200) && done != total) return;
        last = now;
        job.Post(EncodeEvent(id, "progress", {{"done", done}, {"total", total}}));
      };
    }
    auto r = WriteSnapshot(*db, fd->get(), options);
    if (!r.ok()) {
      job.Post(EncodeError(id, r.error().code, r.error().message), true);
      return;
    }
    json result = PointJson(*db, r.value().point);
    result["bytes"] = r.value().bytes;
    result["page_count"] = r.value().page_count;
    result["wal_frames"] = r.value().wal_frames;
    result["sha256"] = r.value().sha256;
    job.Post(EncodeOk(id, result), true);
  });
}

// --- hold and release -------------------------------------------------------

Outcome HoldOp(Call& call) {
  auto resolved = WritableDatabase(call);
  if (!resolved.ok()) return resolved.error();
  std::shared_ptr<Database> db = std::move(resolved.value());
  const int64_t cap_ms =
      std::chrono::duration_cast<milliseconds>(db->lease_cap()).count();
  int64_t lease_ms = cap_ms;
  int64_t drain_ms = cap_ms;
  if (auto r = FirstFailure({IntArg(call, "lease_ms", 1, cap_ms, &lease_ms),
                             IntArg(call, "drain_ms", 1, cap_ms, &drain_ms)});
      !r.ok()) {
    return r.error();
  }
  const int64_t id = call.request.id;
  auto lease = std::make_shared<Lease>();
  lease->db = db;
  std::shared_ptr<Job> timer;
  Outcome outcome = Defer(call, [db, lease, id, lease_ms, drain_ms](Job& job) {
    const auto start = Job::Clock::now();
    auto point = ReachHoldPoint(*db, start + milliseconds(drain_ms),
                                start + milliseconds(lease_ms));
    if (!point.ok()) {
      lease->Finish(Lease::Outcome::kFailed);
      job.Post(EncodeError(id, point.error().code, point.error().message),
               true);
      return;
    }
    if (!lease->Begin(point.value().token, start + milliseconds(lease_ms))) {
      lease->Finish(Lease::Outcome::kFailed);
      job.Post(EncodeError(id, ErrorCode::kBusy,
                           "released before the point was reached"),
               true);
      return;
    }
    json result = DescribeHold(point.value());
    result["db"] = db->id();
    result["path"] = db->path();
    result["lease_ms"] = lease_ms;
    job.Post(EncodeOk(id, result));
    // The lease's timer: quiesce gives the point back at its end whatever
    // the client does, and says so.
    if (!job.Wait(start + milliseconds(lease_ms)) && lease->End()) {
      lease->Finish(Lease::Outcome::kRevoked);
      job.Post(EncodeEvent(id, "revoked",
                           {{"reason", "the lease's time ran out"}}),
               true);
      return;
    }
    lease->Finish(Lease::Outcome::kOver);
    job.Post("", true);  // released or disconnected: nothing more to say
  }, &timer);
  if (timer) {
    // The session ends the lease if it goes first (~Session), and forgets
    // it when the job's last word arrives (Session::PruneLeases).
    lease->timer = timer;
    call.session.leases[id] = lease;
  }
  return outcome;
}

Outcome ReleaseOp(Call& call) {
  const auto it = call.request.args.find("hold");
  if (it == call.request.args.end() || !it->is_number_integer()) {
    return Error{ErrorCode::kBadRequest,
                 "\"hold\" must name the id of the hold request"};
  }
  const int64_t hold = it->get<int64_t>();
  const auto lease = call.session.leases.find(hold);
  if (lease == call.session.leases.end()) {
    const auto& revoked = call.session.revoked_holds;
    if (std::find(revoked.begin(), revoked.end(), hold) != revoked.end()) {
      return Answer({{"intact", false},
                     {"note",
                      "the lease had ended before the release: copies made "
                      "after its end may be inconsistent"}});
    }
    return Error{ErrorCode::kNotFound,
                 "this session holds no lease from request " +
                     std::to_string(it->get<int64_t>())};
  }
  const bool intact = lease->second->Release();
  call.session.leases.erase(lease);
  return Answer(
      {{"intact", intact},
       {"note", intact ? "the point was quiescent throughout the lease"
                       : "the lease had ended before the release: copies "
                         "made after its end may be inconsistent"}});
}

// --- inject -----------------------------------------------------------------

// An fd index named in the request ("sql_fd", a param or the attachment).
bool FdIndex(const json& v, size_t fds, size_t* out) {
  if (!v.is_number_unsigned() || v.get<uint64_t>() >= fds) return false;
  *out = static_cast<size_t>(v.get<uint64_t>());
  return true;
}

Outcome InjectOp(Call& call) {
  auto resolved = WritableDatabase(call);
  if (!resolved.ok()) return resolved.error();
  std::shared_ptr<Database> db = std::move(resolved.value());
  const json& args = call.request.args;
  auto req = std::make_shared<InjectRequest>();
  req->allow_ddl = call.context->config().allow_ddl;
  int64_t timeout_ms = 0;
  if (auto r = FirstFailure(
          {BoolArg(call, "dry_run", &req->dry_run),
           BoolArg(call, "params_from_attachment",
                   &req->params_from_attachment),
           BoolArg(call, "readers_may_proceed", &req->readers_may_proceed),
           IntArg(call, "timeout_ms", 1, kMaxSnapshotMs, &timeout_ms)});
      !r.ok()) {
    return r.error();
  }
  // Which descriptors carry what; read on the job's thread.
  auto fds = std::make_shared<std::vector<UniqueFd>>(std::move(call.fds));
  std::optional<size_t> sql_fd;
  std::vector<std::pair<std::string, size_t>> params;
  const auto sql = args.find("sql");
  const auto sql_fd_arg = args.find("sql_fd");
  if ((sql == args.end()) == (sql_fd_arg == args.end())) {
    return Error{ErrorCode::kBadRequest,
                 "give the script as \"sql\" or as \"sql_fd\" (a "
                 "descriptor index), not both, not neither"};
  }
  if (sql != args.end()) {
    if (!sql->is_string() || sql->get<std::string>().size() > kMaxInlineSql) {
      return Error{ErrorCode::kBadRequest,
                   "\"sql\" must be a string of at most " +
                       std::to_string(kMaxInlineSql) +
                       " bytes (pass larger scripts by descriptor: "
                       "\"sql_fd\")"};
    }
    req->sql = sql->get<std::string>();
  } else {
    size_t index;
    if (!FdIndex(*sql_fd_arg, fds->size(), &index)) {
      return Error{ErrorCode::kBadRequest,
                   "\"sql_fd\" must index one of the descriptors"};
    }
    sql_fd = index;
  }
  if (const auto p = args.find("params"); p != args.end()) {
    if (!p->is_object()) {
      return Error{ErrorCode::kBadRequest,
                   "\"params\" must map names to descriptor indexes"};
    }
    for (const auto& [name, v] : p->items()) {
      size_t index;
      if (!FdIndex(v, fds->size(), &index)) {
        return Error{
            ErrorCode::kBadRequest,
            "param \"" + name + "\" must index one of the descriptors"};
      }
      params.emplace_back(name, index);
    }
  }
  if (const auto a = args.find("attach"); a != args.end()) {
    size_t index;
    if (!a->is_object() || !a->contains("name") || !(*a)["name"].is_string() ||
        !a->contains("fd") || !FdIndex((*a)["fd"], fds->size(), &index)) {
      return Error{ErrorCode::kBadRequest,
                   "\"attach\" must be {\"name\": ..., \"fd\": "
                   "descriptor index}"};
    }
    if (auto r = CheckCannotBlock((*fds)[index].get(),
                                  "the staged database's descriptor");
        !r.ok()) {
      return r.error();
    }
    req->attach_name = (*a)["name"].get<std::string>();
    req->attach_fd = (*fds)[index].get();
  }
  // "hold": the id of this session's hold on the same database; the
  // injection then runs inside that point instead of reaching its own.
  std::shared_ptr<Lease> held;
  if (const auto h = args.find("hold"); h != args.end()) {
    const auto lease = h->is_number_integer()
                           ? call.session.leases.find(h->get<int64_t>())
                           : call.session.leases.end();
    if (lease == call.session.leases.end() || lease->second->db != db) {
      return Error{ErrorCode::kNotFound,
                   "\"hold\" must name the id of this session's "
                   "hold on the same database"};
    }
    held = lease->second;
  }
  const int64_t id = call.request.id;
  const ServerLimits& limits = call.limits;
  const size_t per_value = limits.max_payload_value;
  const size_t per_request = limits.max_payload_request;
  PayloadBudget* budget = &call.payloads;
  const uint64_t session = call.session.id();
  return Defer(call, [db, req, fds, sql_fd, params, id, timeout_ms, per_value,
                      per_request, budget, session, held](Job& job) {
    const auto read_by = Job::Clock::now() + std::chrono::seconds(30);
    PayloadHold hold(*budget, session);
    size_t total = 0;
    // The payloads and their memory go before the reply, so that a client
    // that has its answer may send the next request at once.
    auto let_go = [&] {
      req->blobs.clear();
      std::string().swap(req->sql);
      const size_t held = hold.held();
      hold.Release();
      GiveMemoryBack(held);
    };
    auto fail = [&](const quiesce::Error& e) {
      let_go();
      job.Post(EncodeError(id, e.code, e.message), true);
    };
    // Each value within its cap and within what is left of the request's.
    auto cap = [&] {
      return std::min(per_value, per_request - std::min(per_request, total));
    };
    if (sql_fd) {
      auto r = ReadAll((*fds)[*sql_fd].get(), cap(), "the script (sql_fd)",
                       hold, read_by, job.cancel_flag());
      if (!r.ok()) return fail(r.error());
      req->sql = std::move(r.value());
      total += req->sql.size();
    }
    for (const auto& [name, index] : params) {
      const std::string what = "parameter \"" + name + "\"";
      auto r = ReadAll((*fds)[index].get(), cap(), what.c_str(), hold,
                       read_by, job.cancel_flag());
      if (!r.ok()) return fail(r.error());
      total += r.value().size();
      req->blobs[name] = std::move(r.value());
    }
    if (timeout_ms > 0) {
      req->deadline = Job::Clock::now() + milliseconds(timeout_ms);
    }
    req->cancelled = job.cancel_flag();
    if (held) {
      Job::Clock::time_point until;
      if (!held->Acquire(&req->held_token, &until)) {
        job.Post(EncodeError(id, ErrorCode::kBusy,
                             "the hold named by \"hold\" is not held (still "
                             "draining, released or ended)"),
                 true);
        return;
      }
      // End, rolled back if need be, well before the point does: the
      // gate lets host waiters through at `until` whatever happens.
      const auto margin = std::max<Job::Clock::duration>(
          milliseconds(20), (until - Job::Clock::now()) / 5);
      if (until - margin < req->deadline) req->deadline = until - margin;
    }
    auto r = Inject(*db, *req);
    if (held) held->Unacquire();
    if (!r.ok()) return fail(r.error());
    let_go();
    const InjectResult& v = r.value();
    job.Post(EncodeOk(id, {{"db", db->id()},
                           {"committed", v.committed},
                           {"changes", v.changes},
                           {"last_insert_rowid", v.last_insert_rowid},
                           {"statements", v.statements},
                           {"generation", v.generation},
                           {"position", DescribePosition(v.position)},
                           {"drain_ms", v.drain_us / 1000.0},
                           {"gate_closed_ms", v.gate_closed_us / 1000.0}}),
             true);
  });
}

}  // namespace

const std::vector<Operation>& QuiesceOperations() {
  static const std::vector<Operation> ops = {
      {"snapshot",
       "a consistent image of \"db\" written to the one descriptor sent "
       "(\"fds\":1); replies with its generation, position, size and "
       "SHA-256; \"progress\":true streams progress events",
       1, SnapshotOp},
      {"hold",
       "a quiescent point on \"db\" leased to this session (\"lease_ms\", "
       "capped below the host's max stall) with the exact file sizes; ends "
       "at release, disconnect or the lease's end (a \"revoked\" event)",
       0, HoldOp},
      {"release", "ends the lease of the hold request \"hold\"", 0, ReleaseOp},
      {"inject",
       "runs \"sql\" (or the script at descriptor \"sql_fd\") on \"db\" in "
       "one transaction at a quiescent point; \"params\" binds blobs from "
       "descriptors, \"attach\" a staged database; \"hold\": inside this "
       "session's hold of that id; \"dry_run\", \"readers_may_proceed\", "
       "\"timeout_ms\"",
       kMaxRequestFds, InjectOp},
  };
  return ops;
}

}  // namespace quiesce::control
