// quiescectl: talks to a host that runs the quiesce shim, over its control
// socket. This file: the command line, help texts and the commands.
#include <mimalloc.h>
#include <stdlib.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "client.h"
#include "exit_codes.h"
#include "socket_choice.h"
#include "tables.h"

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
     "the id from list or the database's path.\n"
     "\n"
     "  quiescectl status 1\n"
     "  quiescectl status ~/profile/places.sqlite\n",
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
    {"help", "help [COMMAND]", "Explains a command, with examples.\n\n"
     "  quiescectl help watch\n", Help},
};

const Command* FindCommand(const std::string& name) {
  for (const Command& c : kCommands) {
    if (name == c.name) return &c;
  }
  return nullptr;
}

void Usage(FILE* out) {
  std::fprintf(out,
      "usage: quiescectl [--socket PATH] [--json] COMMAND [ARGS]\n"
      "\n"
      "Talks to a host process that runs the quiesce SQLite shim.\n"
      "\n"
      "commands:\n");
  for (const Command& c : kCommands) std::fprintf(out, "  %s\n", c.synopsis);
  std::fprintf(out,
      "\n"
      "options:\n"
      "  --socket PATH  the host's control socket (a path, or @name for an\n"
      "                 abstract socket); else $QUIESCE_SOCKET; else the only\n"
      "                 socket in $XDG_RUNTIME_DIR/quiesce or /tmp/quiesce-UID\n"
      "  --json         print the host's replies as JSON, for scripts\n"
      "  --version      print the version\n"
      "\n"
      "examples:\n"
      "  quiescectl list\n"
      "  quiescectl --socket /run/user/1000/quiesce/4242.sock status 1\n"
      "  quiescectl watch --count 5\n"
      "  quiescectl help status\n"
      "\n"
      "exit codes: 0 ok, 1 failure, 2 usage, 3 host unreachable,\n"
      "4 refused (forbidden, not found, unsupported), 5 busy or timed out\n");
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
    std::fprintf(stderr, "quiescectl: %s: %s\n", op.c_str(), error.c_str());
    return kExitFailure;
  }
  if (!reply->ok) {
    std::fprintf(stderr, "quiescectl: %s: %s (%s)\n", op.c_str(),
                 reply->error_message.c_str(), reply->error_code.c_str());
    return ExitForError(reply->error_code);
  }
  return kExitOk;
}

// A DB argument: a number is an id from list; anything else a path, made
// canonical here (the host compares, it never resolves a client's path).
json DbArgument(const std::string& arg) {
  if (!arg.empty() &&
      arg.find_first_not_of("0123456789") == std::string::npos) {
    return std::stoull(arg);
  }
  if (char* real = realpath(arg.c_str(), nullptr)) {
    std::string canonical = real;
    free(real);
    return canonical;
  }
  return arg;
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
  code = CallHost(*client, "status", {{"db", DbArgument(opt.args[0])}}, &reply);
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
  if (!opt.args.empty()) args["db"] = DbArgument(opt.args[0]);
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
      std::fprintf(stderr, "quiescectl: watch: %s\n", error.c_str());
      return kExitFailure;
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

int Help(const Options& opt) {
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
      std::printf("quiescectl 0.1.0 (mimalloc %d)\n", mi_version());
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
    } else if (a.size() > 1 && a[0] == '-' && a != "-") {
      return UsageError("unknown option " + a);
    } else if (opt.command.empty()) {
      opt.command = a;
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
