#include "operations.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <poll.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "exit_codes.h"
#include "unique_fd.h"

namespace quiesce::ctl {
namespace {

using control::Client;
using control::Message;
using control::UniqueFd;

constexpr int kReplyTimeoutMs = 15 * 60 * 1000;

bool Fail(Failure* f, int code, std::string message) {
  f->exit_code = code;
  f->message = std::move(message);
  return false;
}

bool Errno(Failure* f, const std::string& what) {
  return Fail(f, kExitFailure, what + ": " + std::strerror(errno));
}

// A command's exit status as a shell reports it: its code, or 128 + the
// signal that ended it.
int ShellStatus(int status) {
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

// Sends a request and reads until its reply, handing events to on_event.
bool Request(Client& client, const std::string& op, const json& args,
             const std::vector<int>& fds,
             const std::function<void(const Message&)>& on_event,
             Message* reply, Failure* failure) {
  std::string error;
  int64_t id = 0;
  if (client.Send(op, args, fds, &id, 10000, &error) != Client::Status::kOk) {
    return Fail(failure, kExitUnreachable, op + ": " + error);
  }
  for (;;) {
    Message m;
    const auto status = client.Read(&m, kReplyTimeoutMs, &error);
    if (status == Client::Status::kTimeout) {
      return Fail(failure, kExitBusy, op + ": no reply in time");
    }
    if (status != Client::Status::kOk) {
      return Fail(failure, kExitUnreachable,
                  op + ": the host went away: " + error);
    }
    if (m.is_event) {
      if (m.id == id && on_event) on_event(m);
      continue;
    }
    if (m.id && *m.id != id) continue;
    *reply = std::move(m);
    if (!reply->ok) {
      return Fail(failure, ExitForError(reply->error_code),
                  op + ": " + reply->error_message + " (" +
                      reply->error_code + ")");
    }
    return true;
  }
}

bool IntegrityOk(const std::string& path, std::string* detail) {
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) !=
      SQLITE_OK) {
    *detail = db ? sqlite3_errmsg(db) : "cannot open";
    sqlite3_close(db);
    return false;
  }
  sqlite3_stmt* st = nullptr;
  sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, nullptr);
  const bool ok = st && sqlite3_step(st) == SQLITE_ROW &&
                  std::strcmp(reinterpret_cast<const char*>(
                                  sqlite3_column_text(st, 0)),
                              "ok") == 0;
  if (!ok && st) {
    const unsigned char* t = sqlite3_column_text(st, 0);
    *detail = t ? reinterpret_cast<const char*>(t) : sqlite3_errmsg(db);
  }
  sqlite3_finalize(st);
  sqlite3_close(db);
  return ok;
}

}  // namespace

bool FileSha256(const std::string& path, std::string* hex) {
  FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) return false;
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr);
  char buf[1 << 16];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), f)) > 0) {
    EVP_DigestUpdate(ctx, buf, n);
  }
  const bool read_ok = !std::ferror(f);
  std::fclose(f);
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned len = 0;
  EVP_DigestFinal_ex(ctx, digest, &len);
  EVP_MD_CTX_free(ctx);
  static constexpr char kHex[] = "0123456789abcdef";
  hex->clear();
  for (unsigned i = 0; i < len; ++i) {
    hex->push_back(kHex[digest[i] >> 4]);
    hex->push_back(kHex[digest[i] & 15]);
  }
  return read_ok;
}

bool SnapshotToFile(Client& client, const json& db, const std::string& path,
                    bool verify,
                    const std::function<void(uint64_t, uint64_t)>& progress,
                    json* result, Failure* failure) {
  const std::string part = path + ".part";
  UniqueFd fd(open(part.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
                   0600));
  if (!fd) return Errno(failure, "cannot write " + part);
  Message reply;
  const bool ok = Request(
      client, "snapshot", {{"db", db}, {"progress", progress != nullptr}},
      {fd.get()},
      [&](const Message& m) {
        if (progress && m.event == "progress") {
          progress(m.body.value("done", 0ull), m.body.value("total", 0ull));
        }
      },
      &reply, failure);
  if (ok && fsync(fd.get()) != 0) {
    unlink(part.c_str());
    return Errno(failure, "cannot flush " + part);
  }
  fd.reset();
  if (!ok) {
    unlink(part.c_str());
    return false;
  }
  std::string sha;
  if (!FileSha256(part, &sha) || sha != reply.result.value("sha256", "")) {
    unlink(part.c_str());
    return Fail(failure, kExitFailure,
                "the snapshot written to " + part +
                    " does not match the host's SHA-256: not kept");
  }
  if (verify) {
    std::string detail;
    const bool intact = IntegrityOk(part, &detail);
    reply.result["integrity_check"] = intact ? "ok" : detail;
    if (!intact) {
      unlink(part.c_str());
      return Fail(failure, kExitFailure,
                  "the snapshot fails integrity_check: " + detail);
    }
  }
  if (rename(part.c_str(), path.c_str()) != 0) {
    unlink(part.c_str());
    return Errno(failure, "cannot rename " + part + " to " + path);
  }
  *result = std::move(reply.result);
  return true;
}

bool InjectFromFiles(Client& client, const json& db, const InjectFiles& in,
                     json* result, Failure* failure) {
  std::vector<UniqueFd> owned;
  std::vector<int> fds;
  auto add = [&](const std::string& path) -> int {
    if (path == "-") {
      fds.push_back(STDIN_FILENO);
      return static_cast<int>(fds.size()) - 1;
    }
    UniqueFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) return -1;
    fds.push_back(fd.get());
    owned.push_back(std::move(fd));
    return static_cast<int>(fds.size()) - 1;
  };
  json args = {{"db", db},
               {"dry_run", in.dry_run},
               {"readers_may_proceed", in.readers_may_proceed}};
  const int sql = add(in.sql_path);
  if (sql < 0) return Errno(failure, "cannot read " + in.sql_path);
  args["sql_fd"] = sql;
  json params = json::object();
  for (const auto& [name, path] : in.params) {
    const int i = add(path);
    if (i < 0) return Errno(failure, "cannot read " + path);
    params[name] = i;
  }
  if (!params.empty()) args["params"] = params;
  if (in.attach) {
    const int i = add(in.attach->second);
    if (i < 0) return Errno(failure, "cannot read " + in.attach->second);
    args["attach"] = {{"name", in.attach->first}, {"fd", i}};
    args["params_from_attachment"] = in.params_from_attachment;
  }
  if (in.hold) {
    args["hold"] = *in.hold;
  }
  if (fds.size() > static_cast<size_t>(control::kMaxRequestFds)) {
    return Fail(failure, kExitUsage,
                "an injection carries at most " +
                    std::to_string(control::kMaxRequestFds) +
                    " files (script, params and attachment together)");
  }
  Message reply;
  if (!Request(client, "inject", args, fds, nullptr, &reply, failure)) {
    return false;
  }
  *result = std::move(reply.result);
  return true;
}

bool HoldAround(Client& client, const json& db, long lease_ms,
                const std::vector<std::string>& argv, json* result,
                int* child_status, Failure* failure) {
  json args = {{"db", db}};
  if (lease_ms > 0) args["lease_ms"] = lease_ms;
  Message reply;
  if (!Request(client, "hold", args, {}, nullptr, &reply, failure)) {
    return false;
  }
  const int64_t hold_id = reply.id.value_or(0);
  const json& files = reply.result["files"];
  const pid_t pid = fork();
  if (pid < 0) return Errno(failure, "fork");
  if (pid == 0) {
    setenv("QUIESCE_HOLD_DB", reply.result.value("path", "").c_str(), 1);
    setenv("QUIESCE_HOLD_GENERATION",
           std::to_string(reply.result.value("generation", 0ull)).c_str(), 1);
    setenv("QUIESCE_HOLD_DB_SIZE",
           std::to_string(files.value("db", -1ll)).c_str(), 1);
    setenv("QUIESCE_HOLD_WAL_SIZE",
           std::to_string(files.value("wal", -1ll)).c_str(), 1);
    setenv("QUIESCE_HOLD_LEASE_MS",
           std::to_string(reply.result.value("lease_ms", 0ll)).c_str(), 1);
    std::vector<char*> cargv;
    cargv.reserve(argv.size() + 1);
    for (const std::string& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
    cargv.push_back(nullptr);
    execvp(cargv[0], cargv.data());
    std::fprintf(stderr, "quiescectl: cannot run %s: %s\n", cargv[0],
                 std::strerror(errno));
    _exit(127);
  }
  // Wait for the command while listening for the lease's end.
  bool revoked = false;
  bool gone = false;  // the host closed the connection
  std::string error;
  for (;;) {
    int status = 0;
    const pid_t done = waitpid(pid, &status, WNOHANG);
    if (done == pid) {
      *child_status = ShellStatus(status);
      break;
    }
    Message m;
    const auto s = client.Read(&m, 50, &error);
    if (s == Client::Status::kOk && m.is_event && m.event == "revoked") {
      revoked = true;
    } else if (s == Client::Status::kClosed || s == Client::Status::kError) {
      // The host is gone: so is the point. Reading the connection again
      // would return at once, every time: wait for the command alone
      // instead of spinning until it ends.
      revoked = true;
      gone = true;
      int status = 0;
      pid_t waited = -1;
      do {
        waited = waitpid(pid, &status, 0);
      } while (waited < 0 && errno == EINTR);
      *child_status = waited == pid ? ShellStatus(status) : 127;
      break;
    }
  }
  *result = reply.result;
  if (gone) {
    return Fail(failure, kExitUnreachable,
                "the host went away while the command ran: what it copied "
                "may be inconsistent");
  }
  if (revoked) {
    return Fail(failure, kExitBusy,
                "the lease ended before the command did: what it copied may "
                "be inconsistent (raise --lease-ms up to the host's limit, "
                "or copy less)");
  }
  Message released;
  if (!Request(client, "release", {{"hold", hold_id}}, {}, nullptr, &released,
               failure)) {
    return false;
  }
  (*result)["intact"] = released.result.value("intact", false);
  if (!released.result.value("intact", false)) {
    return Fail(failure, kExitBusy,
                "the lease ended before the release: what the command "
                "copied may be inconsistent");
  }
  return true;
}

}  // namespace quiesce::ctl
