// quiescectl: talks to a host that runs the quiesce shim, over its control
// socket. This file: the command line, help texts and the commands.
#include <mimalloc.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "bundle_commands.h"
#include "client.h"
#include "exit_codes.h"
#include "man_page.h"
#include "operations.h"
#include "socket_choice.h"
#include "tables.h"
#include "terminal_progress.h"

namespace quiesce::ctl {
namespace {

using control::Client;
using control::Message;

constexpr int kCallTimeoutMs = 10000;

struct Options {
  std::string socket;  // --socket
  bool json = false;   // --json
  std::string command;
  std::vector<std::string> args;
  long count = 0;        // watch --count (0: unbounded)
  double timeout_s = 0;  // watch --timeout (0: none)
  std::string output;    // snapshot -o
  bool verify = false;   // snapshot --verify
  bool force = false;    // snapshot --force: replace FILE
  long lease_ms = 0;     // hold --lease-ms (0: the host's limit)
  std::vector<std::string> child;  // hold -- COMMAND...
  bool man = false;      // help --man: roff instead of text
  InjectFiles inject;    // inject's --param, --attach, --dry-run, ...
};

struct Command {
  const char* name;
  const char* synopsis;
  const char* help;  // what it does, then examples
  int (*run)(const Options&);
};

int List(const Options&);
int Status(const Options&);
int Watch(const Options&);
int Help(const Options&);
int Snapshot(const Options&);
int Hold(const Options&);
int Inject(const Options&);
int Bundle(const Options&);

const Command kCommands[] = {
    {"list", "list",
     "Lists every database the host has open through the shim: its id (for\n"
     "the other commands), journal and locking mode, generation (commits\n"
     "made through the shim), size, open handles, last commit and path.\n"
     "\n"
     "  quiescectl list\n"
     "  quiescectl --json list | jq '.databases[].path'\n",
     List},
    {"status", "status DB",
     "Shows one database in detail: position (WAL salts and mxFrame, or the\n"
     "change counter), counters, and every open handle with its locks. DB is\n"
     "the id from list, the database's path, or its file name when only one\n"
     "open database has that name (as for every command that takes a DB).\n"
     "\n"
     "  quiescectl status 1\n"
     "  quiescectl status ~/profile/places.sqlite\n"
     "  quiescectl status places.sqlite\n",
     Status},
    {"watch", "watch [DB] [--count N] [--timeout S]",
     "Prints a line for every commit, as it happens, of one database or of\n"
     "all. Commits by other processes show as FOREIGN (coalesced). Stops\n"
     "after N commits (--count), after S seconds (--timeout; with --count,\n"
     "not reaching N in time exits 5), or when the database is closed.\n"
     "\n"
     "  quiescectl watch\n"
     "  quiescectl watch 2 --count 10\n"
     "  quiescectl --json watch --timeout 60 > commits.jsonl\n",
     Watch},
    {"snapshot", "snapshot DB -o FILE [--verify] [--force]",
     "Writes a consistent image of the database, as of one commit, to FILE\n"
     "(a standalone rollback-journal database: no -wal or -shm needed). The\n"
     "host writes it through a descriptor; quiescectl checks its SHA-256 and,\n"
     "with --verify, runs PRAGMA integrity_check on it. In WAL mode the host\n"
     "never waits; in rollback mode its writers wait for the copy, bounded.\n"
     "A database the host holds in locking_mode=EXCLUSIVE is copied raw while\n"
     "the host writes that would change it wait. FILE appears only when\n"
     "whole; an existing FILE is kept (exit 2) unless --force.\n"
     "\n"
     "  quiescectl snapshot 1 -o backup.db --verify\n"
     "  quiescectl --json snapshot ~/app/data.db -o /tmp/data.db\n",
     Snapshot},
    {"hold", "hold DB [--lease-ms N] -- COMMAND [ARGS...]",
     "Reaches a quiescent point (no host transaction, no checkpoint, files\n"
     "stable) and runs COMMAND while it lasts, with QUIESCE_HOLD_DB,\n"
     "QUIESCE_HOLD_GENERATION, QUIESCE_HOLD_DB_SIZE, QUIESCE_HOLD_WAL_SIZE\n"
     "and QUIESCE_HOLD_LEASE_MS set. Host transactions wait meanwhile, so the\n"
     "lease is short (the host caps it below its max stall). Copy exactly\n"
     "the sizes given: under locking_mode=EXCLUSIVE host commits go on\n"
     "appending to the WAL past QUIESCE_HOLD_WAL_SIZE. Exits with the\n"
     "command's status, or 5 when the lease ended first. Needs write access.\n"
     "\n"
     "  quiescectl hold 1 -- sh -c 'cp \"$QUIESCE_HOLD_DB\" /tmp/copy.db'\n",
     Hold},
    {"inject", "inject DB FILE.sql [--param NAME=@FILE] [--attach NAME=FILE] "
               "[--dry-run]",
     "Runs the SQL in FILE.sql (- for standard input) on the live database\n"
     "in one transaction at a quiescent point: host transactions wait, never\n"
     "fail, and start on the new state. All or nothing. --param binds a\n"
     "file's bytes as the blob :NAME; --attach attaches a staged database\n"
     "read-only as NAME (--params-from-attachment binds every parameter from\n"
     "its table quiesce_params(name, value)); --dry-run runs and rolls back;\n"
     "--readers-may-proceed lets host readers run across it (a reader that\n"
     "later writes then fails with SQLITE_BUSY_SNAPSHOT). No transaction\n"
     "statements, ATTACH, pragmas that set anything, or DDL unless the host\n"
     "allows it. Needs write access.\n"
     "\n"
     "  quiescectl inject 1 fix.sql --dry-run\n"
     "  quiescectl inject 1 add.sql --param body=@body.bin\n"
     "  quiescectl inject 1 copy.sql --attach incoming=staged.db\n",
     Inject},
    {"bundle", kBundleSynopsis, kBundleHelp, Bundle},
    {"help", "help [COMMAND]", "Explains a command, with examples.\n\n"
     "  quiescectl help watch\n", Help},
};

const Command* FindCommand(const std::string& name) {
  for (const Command& c : kCommands) {
    if (name == c.name) return &c;
  }
  return nullptr;
}

// The global options, exit codes and environment: --help prints them and
// so does the man page (help --man), from these tables.
const ManItem kGlobalOptions[] = {
    {"--socket PATH",
     "the host's control socket (a path, or @name for an\n"
     "abstract socket); else $QUIESCE_SOCKET; else the only\n"
     "socket in $XDG_RUNTIME_DIR/quiesce or /tmp/quiesce-UID"},
    {"--json", "print the host's replies as JSON, for scripts"},
    {"--help", "print this help (help COMMAND: one command's)"},
    {"--version", "print the version"},
};
const ManItem kExitCodes[] = {
    {"0", "ok"},
    {"1", "failure"},
    {"2", "usage (a bad command line)"},
    {"3", "host unreachable (no host answers at the socket)"},
    {"4", "refused (forbidden, not found, unsupported)"},
    {"5", "busy or timed out (try again later)"},
};
const ManItem kEnvironment[] = {
    {"QUIESCE_SOCKET", "the host's control socket, when --socket is not given"},
    {"XDG_RUNTIME_DIR",
     "where hosts put their sockets by default\n"
     "($XDG_RUNTIME_DIR/quiesce/PID.sock)"},
};

// "a\nb" as "a\n<indent>b".
void PrintIndented(const char* text, int indent, FILE* out) {
  for (const char* p = text; *p; ++p) {
    std::fputc(*p, out);
    if (*p == '\n') std::fprintf(out, "%*s", indent, "");
  }
  std::fputc('\n', out);
}

void Usage(FILE* out) {
  std::fprintf(out,
      "usage: quiescectl [--socket PATH] [--json] COMMAND [ARGS]\n"
      "\n"
      "Talks to a host process that runs the quiesce SQLite shim.\n"
      "\n"
      "commands:\n");
  for (const Command& c : kCommands) std::fprintf(out, "  %s\n", c.synopsis);
  std::fprintf(out, "\noptions:\n");
  for (const ManItem& o : kGlobalOptions) {
    std::fprintf(out, "  %-14s ", o.label);
    PrintIndented(o.text, 17, out);
  }
  std::fprintf(out,
      "\n"
      "examples:\n"
      "  quiescectl list\n"
      "  quiescectl --socket /run/user/1000/quiesce/4242.sock status 1\n"
      "  quiescectl watch --count 5\n"
      "  quiescectl help status\n"
      "\n"
      "exit codes:\n");
  for (const ManItem& e : kExitCodes) {
    std::fprintf(out, "  %s  %s\n", e.label, e.text);
  }
  std::fprintf(out, "\nenvironment:\n");
  for (const ManItem& e : kEnvironment) {
    std::fprintf(out, "  %-16s ", e.label);
    PrintIndented(e.text, 19, out);
  }
}

int PrintMan(const std::string& section) {
  if (section == "1") {
    std::vector<ManCommand> commands;
    for (const Command& c : kCommands) {
      commands.push_back({c.name, c.synopsis, c.help});
    }
    PrintQuiescectlMan(
        {QUIESCE_VERSION,
         "talk to a host process that runs the quiesce SQLite shim", commands,
         kGlobalOptions, kExitCodes, kEnvironment},
        stdout);
  } else if (section == "7") {
    PrintShimMan(QUIESCE_VERSION, stdout);
  } else {
    std::fprintf(stderr, "quiescectl: help --man takes 1 (quiescectl) or 7 "
                         "(quiesce)\n");
    return kExitUsage;
  }
  return kExitOk;
}

int UsageError(const std::string& message) {
  std::fprintf(stderr, "quiescectl: %s\n(quiescectl --help explains)\n",
               message.c_str());
  return kExitUsage;
}

// Connects to the host, or says why not and sets *exit_code.
std::unique_ptr<Client> ConnectHost(const Options& opt, int* exit_code) {
  std::string socket, error;
  if (!ChooseSocket(opt.socket, &socket, &error)) {
    std::fprintf(stderr, "quiescectl: %s\n", error.c_str());
    *exit_code = kExitUnreachable;
    return nullptr;
  }
  auto client = Client::Connect(socket, kCallTimeoutMs, &error);
  if (!client) {
    std::fprintf(stderr, "quiescectl: %s\n", error.c_str());
    *exit_code = kExitUnreachable;
  }
  return client;
}

// Makes one call; on failure prints why and returns the exit code.
int CallHost(Client& client, const std::string& op, const json& args,
             Message* reply) {
  std::string error;
  const auto status = client.Call(op, args, reply, kCallTimeoutMs, &error);
  if (status == Client::Status::kTimeout) {
    std::fprintf(stderr, "quiescectl: %s: %s\n", op.c_str(), error.c_str());
    return kExitBusy;
  }
  if (status != Client::Status::kOk) {
    std::fprintf(stderr, "quiescectl: %s: the host went away: %s\n",
                 op.c_str(), error.c_str());
    return kExitUnreachable;
  }
  if (!reply->ok) {
    std::fprintf(stderr, "quiescectl: %s: %s (%s)\n", op.c_str(),
                 reply->error_message.c_str(), reply->error_code.c_str());
    return ExitForError(reply->error_code);
  }
  return kExitOk;
}

// A DB argument: a number is an id from list; a path is made canonical here
// (the host compares, it never resolves a client's path); a name that is
// no open database's path is matched against the basenames `list` gives
// (`snapshot places.sqlite`), and must match exactly one. Returns the exit
// code (kExitOk with *db set).
int ResolveDb(Client& client, const std::string& arg, json* db) {
  if (!arg.empty() &&
      arg.find_first_not_of("0123456789") == std::string::npos) {
    *db = std::stoull(arg);
    return kExitOk;
  }
  std::string canonical = arg;
  if (char* real = realpath(arg.c_str(), nullptr)) {
    canonical = real;
    free(real);
  }
  *db = canonical;
  Message reply;
  std::string error;
  if (client.Call("list", json::object(), &reply, kCallTimeoutMs, &error) !=
          Client::Status::kOk ||
      !reply.ok) {
    return kExitOk;  // the request itself will say what is wrong
  }
  std::vector<std::string> same_name;
  for (const json& d : reply.result.value("databases", json::array())) {
    const std::string path = d.value("path", "");
    if (path == canonical) return kExitOk;
    const size_t slash = path.rfind('/');
    if (arg.find('/') == std::string::npos &&
        path.compare(slash == std::string::npos ? 0 : slash + 1,
                     std::string::npos, arg) == 0) {
      same_name.push_back(path);
    }
  }
  if (same_name.size() == 1) {
    *db = same_name.front();
    return kExitOk;
  }
  if (same_name.size() > 1) {
    std::string all;
    for (const std::string& p : same_name) all += "\n  " + p;
    std::fprintf(stderr,
                 "quiescectl: %zu open databases are named %s; give the id "
                 "from list or the path of one:%s\n",
                 same_name.size(), arg.c_str(), all.c_str());
    return kExitUsage;
  }
  return kExitOk;  // not open: the host answers not_found
}

void PrintJson(const json& value) {
  std::printf("%s\n",
              value.dump(-1, ' ', false, json::error_handler_t::replace).c_str());
}

int List(const Options& opt) {
  if (!opt.args.empty()) return UsageError("list takes no arguments");
  int code = kExitOk;
  auto client = ConnectHost(opt, &code);
  if (!client) return code;
  Message reply;
  if ((code = CallHost(*client, "list", json::object(), &reply)) != kExitOk) {
    return code;
  }
  if (opt.json) PrintJson(reply.result);
  else PrintList(reply.result, stdout);
  return kExitOk;
}

int Status(const Options& opt) {
  if (opt.args.size() != 1) return UsageError("status needs one DB");
  int code = kExitOk;
  auto client = ConnectHost(opt, &code);
  if (!client) return code;
  Message reply;
  json db;
  if ((code = ResolveDb(*client, opt.args[0], &db)) != kExitOk) return code;
  code = CallHost(*client, "status", {{"db", db}}, &reply);
  if (code != kExitOk) return code;
  if (opt.json) PrintJson(reply.result);
  else PrintStatus(reply.result, stdout);
  return kExitOk;
}

int Watch(const Options& opt) {
  if (opt.args.size() > 1) return UsageError("watch takes at most one DB");
  int code = kExitOk;
  auto client = ConnectHost(opt, &code);
  if (!client) return code;
  json args = json::object();
  if (!opt.args.empty()) {
    json db;
    if ((code = ResolveDb(*client, opt.args[0], &db)) != kExitOk) return code;
    args["db"] = db;
  }
  Message reply;
  if ((code = CallHost(*client, "watch", args, &reply)) != kExitOk) {
    return code;
  }
  using Clock = std::chrono::steady_clock;
  const auto deadline =
      opt.timeout_s > 0
          ? Clock::now() + std::chrono::milliseconds(
                               static_cast<int64_t>(opt.timeout_s * 1000))
          : Clock::time_point::max();
  long commits = 0;
  while (opt.count == 0 || commits < opt.count) {
    int wait_ms = 60 * 60 * 1000;
    if (deadline != Clock::time_point::max()) {
      const auto left = std::chrono::ceil<std::chrono::milliseconds>(
          deadline - Clock::now());
      if (left.count() <= 0) break;
      wait_ms = static_cast<int>(left.count());
    }
    Message m;
    std::string error;
    const auto status = client->Read(&m, wait_ms, &error);
    if (status == Client::Status::kTimeout) continue;  // the loop checks
    if (status != Client::Status::kOk) {
      std::fprintf(stderr, "quiescectl: watch: the host went away: %s\n",
                   error.c_str());
      return kExitUnreachable;
    }
    if (!m.is_event) continue;
    if (opt.json) PrintJson(m.body);
    else PrintEvent(m.body, stdout);
    std::fflush(stdout);
    if (m.event == "commit") ++commits;
    if (m.event == "dropped") {
      std::fprintf(stderr, "quiescectl: watch: dropped by the host: %s\n",
                   m.body.value("reason", std::string("?")).c_str());
      return kExitFailure;
    }
    // A one-database watch ends when the host closes it.
    if (m.event == "closed" && !opt.args.empty()) return kExitOk;
  }
  if (opt.count > 0 && commits < opt.count) {
    std::fprintf(stderr, "quiescectl: watch: %ld of %ld commits in %gs\n",
                 commits, opt.count, opt.timeout_s);
    return kExitBusy;
  }
  return kExitOk;
}

int Report(const Failure& failure) {
  std::fprintf(stderr, "quiescectl: %s\n", failure.message.c_str());
  return failure.exit_code;
}

int Snapshot(const Options& opt) {
  if (opt.args.size() != 1 || opt.output.empty()) {
    return UsageError("snapshot takes DB and -o FILE");
  }
  if (struct stat st; !opt.force && lstat(opt.output.c_str(), &st) == 0) {
    return UsageError(opt.output + " exists: add --force to replace it");
  }
  int code = kExitOk;
  auto client = ConnectHost(opt, &code);
  if (!client) return code;
  json result, db;
  if ((code = ResolveDb(*client, opt.args[0], &db)) != kExitOk) return code;
  Failure failure;
  if (!SnapshotToFile(*client, db, opt.output, opt.verify,
                      TerminalProgress("snapshot", "pages"), &result,
                      &failure)) {
    return Report(failure);
  }
  if (opt.json) {
    PrintJson(result);
  } else {
    std::printf("%s: generation %llu, %llu pages of %llu bytes (%.1f MB), "
                "sha256 %s%s\n",
                opt.output.c_str(),
                static_cast<unsigned long long>(result.value("generation", 0ull)),
                static_cast<unsigned long long>(result.value("page_count", 0ull)),
                static_cast<unsigned long long>(result.value("page_size", 0ull)),
                result.value("bytes", 0ull) / 1e6,
                result.value("sha256", "").c_str(),
                opt.verify ? ", integrity_check ok" : "");
  }
  return kExitOk;
}

int Hold(const Options& opt) {
  if (opt.args.size() != 1 || opt.child.empty()) {
    return UsageError("hold takes DB and -- COMMAND");
  }
  int code = kExitOk;
  auto client = ConnectHost(opt, &code);
  if (!client) return code;
  json result, db;
  if ((code = ResolveDb(*client, opt.args[0], &db)) != kExitOk) return code;
  Failure failure;
  int status = 0;
  if (!HoldAround(*client, db, opt.lease_ms, opt.child,
                  &result, &status, &failure)) {
    return Report(failure);
  }
  if (opt.json) {
    result["command_status"] = status;
    PrintJson(result);
  }
  return status;
}

int Inject(const Options& opt) {
  if (opt.args.size() != 2) return UsageError("inject takes DB and FILE.sql");
  int code = kExitOk;
  auto client = ConnectHost(opt, &code);
  if (!client) return code;
  InjectFiles files = opt.inject;
  files.sql_path = opt.args[1];
  json result, db;
  if ((code = ResolveDb(*client, opt.args[0], &db)) != kExitOk) return code;
  Failure failure;
  if (!InjectFromFiles(*client, db, files, &result,
                       &failure)) {
    return Report(failure);
  }
  if (opt.json) {
    PrintJson(result);
  } else {
    std::printf("%s: %lld rows changed by %lld statements; generation %llu; "
                "host held back %.2f ms (drain %.2f ms)\n",
                result.value("committed", false) ? "committed"
                                                 : "dry run, rolled back",
                static_cast<long long>(result.value("changes", 0ll)),
                static_cast<long long>(result.value("statements", 0ll)),
                static_cast<unsigned long long>(result.value("generation", 0ull)),
                result.value("gate_closed_ms", 0.0),
                result.value("drain_ms", 0.0));
  }
  return kExitOk;
}

int Bundle(const Options& opt) {
  return RunBundle(opt.socket, opt.json, opt.args);
}

int Help(const Options& opt) {
  // Hidden: the man pages, written from the tables --help uses.
  if (opt.man) return PrintMan(opt.args.empty() ? "1" : opt.args[0]);
  if (opt.args.empty()) {
    Usage(stdout);
    return kExitOk;
  }
  const Command* c = FindCommand(opt.args[0]);
  if (c == nullptr) return UsageError("no command '" + opt.args[0] + "'");
  std::printf("usage: quiescectl [--socket PATH] [--json] %s\n\n%s",
              c->synopsis, c->help);
  return kExitOk;
}

bool ParseNumber(const std::string& text, double* out) {
  char* end = nullptr;
  *out = std::strtod(text.c_str(), &end);
  return !text.empty() && end && *end == '\0' && *out >= 0;
}

int Main(int argc, char** argv) {
  Options opt;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&](std::string* out) {
      if (i + 1 >= argc) return false;
      *out = argv[++i];
      return true;
    };
    std::string v;
    double number = 0;
    if (a == "--socket") {
      if (!value(&opt.socket)) return UsageError("--socket needs a PATH");
    } else if (a == "--json") {
      opt.json = true;
    } else if (a == "-h" || a == "--help") {
      Usage(stdout);
      return kExitOk;
    } else if (a == "--version") {
      std::printf("quiescectl %s (mimalloc %d)\n", QUIESCE_VERSION,
                  mi_version());
      return kExitOk;
    } else if (a == "--count") {
      if (!value(&v) || !ParseNumber(v, &number) || number < 1) {
        return UsageError("--count needs a number of commits");
      }
      opt.count = static_cast<long>(number);
    } else if (a == "--timeout") {
      if (!value(&v) || !ParseNumber(v, &number) || number <= 0) {
        return UsageError("--timeout needs seconds");
      }
      opt.timeout_s = number;
    } else if (a == "-o" || a == "--output") {
      if (!value(&opt.output)) return UsageError(a + " needs a FILE");
    } else if (a == "--verify") {
      opt.verify = true;
    } else if (a == "--force") {
      opt.force = true;
    } else if (a == "--lease-ms") {
      if (!value(&v) || !ParseNumber(v, &number) || number < 1) {
        return UsageError("--lease-ms needs milliseconds");
      }
      opt.lease_ms = static_cast<long>(number);
    } else if (a == "--param") {
      const size_t eq = value(&v) ? v.find("=@") : std::string::npos;
      if (eq == std::string::npos || eq == 0) {
        return UsageError("--param needs NAME=@FILE");
      }
      opt.inject.params.emplace_back(v.substr(0, eq), v.substr(eq + 2));
    } else if (a == "--attach") {
      const size_t eq = value(&v) ? v.find('=') : std::string::npos;
      if (eq == std::string::npos || eq == 0) {
        return UsageError("--attach needs NAME=FILE");
      }
      opt.inject.attach = std::make_pair(v.substr(0, eq), v.substr(eq + 1));
    } else if (a == "--params-from-attachment") {
      opt.inject.params_from_attachment = true;
    } else if (a == "--dry-run") {
      opt.inject.dry_run = true;
    } else if (a == "--readers-may-proceed") {
      opt.inject.readers_may_proceed = true;
    } else if (a == "--man") {
      opt.man = true;
    } else if (a == "--") {
      for (++i; i < argc; ++i) opt.child.push_back(argv[i]);
    } else if (a.size() > 1 && a[0] == '-' && a != "-") {
      return UsageError("unknown option " + a);
    } else if (opt.command.empty()) {
      opt.command = a;
      if (a == "bundle") {  // parses its own options (bundle_commands.h)
        for (++i; i < argc; ++i) opt.args.push_back(argv[i]);
      }
    } else {
      opt.args.push_back(a);
    }
  }
  if (opt.command.empty()) {
    Usage(stderr);
    return kExitUsage;
  }
  const Command* c = FindCommand(opt.command);
  if (c == nullptr) return UsageError("no command '" + opt.command + "'");
  if (opt.man && opt.command != "help") {
    return UsageError("--man belongs to help");
  }
  if ((opt.count || opt.timeout_s) && opt.command != "watch") {
    return UsageError("--count and --timeout belong to watch");
  }
  return c->run(opt);
}

}  // namespace
}  // namespace quiesce::ctl

int main(int argc, char** argv) {
  try {
    return quiesce::ctl::Main(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "quiescectl: %s\n", e.what());
    return quiesce::ctl::kExitFailure;
  }
}
