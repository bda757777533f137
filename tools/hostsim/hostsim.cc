// hostsim: a host process with the quiesce shim loaded, for the demo and
// benchmarks. It takes over SQLite's "unix" VFS (as a GeckoView build
// would), opens databases in several journal modes, commits transactions on
// one thread per database, and prints what the shim tracked. With --gecko
// it is a Gecko-like host instead: Cache API storage of several origins
// under a write load (gecko_host.h). SQLite allocates with mimalloc, set up
// before SQLite initializes, as Gecko sets up jemalloc.
#include <signal.h>
#include <sqlite3.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "../number_flag.h"
#include "context.h"
#include "gecko_host.h"
#include "quiesce/quiesce.h"
#include "sqlite_allocator.h"

namespace {

struct Options {
  std::string dir = ".";
  int commits = 200;  // per database
  std::string socket;  // control socket; empty: none
  int serve = 0;       // --serve: seconds to keep committing for clients
  int rate = 20;       // commits per second per database in --serve
  bool writable = false;  // --writable: clients may hold and inject
  bool gecko = false;     // --gecko: the Gecko-like host
  quiesce::hostsim::GeckoLoad load;  // --gecko's load (--rate, --seconds too)
  std::string log;        // --log: the Gecko host's operations, JSON lines
};

// Set by SIGINT and SIGTERM in --gecko mode (a lock-free atomic: safe in a
// signal handler).
std::atomic<bool> g_stop{false};

void Usage(FILE* out) {
  std::fprintf(out,
      "usage: hostsim [--dir DIR] [--commits N]\n"
      "               [--socket PATH [--serve SECONDS] [--rate N] [--writable]]\n"
      "       hostsim --gecko [--dir PROFILE] [--origins N] [--rate N]\n"
      "               [--body-size BYTES] [--delete-every N] [--urls N]\n"
      "               [--fill N] [--seconds S] [--log FILE]\n"
      "               [--socket PATH [--writable]]\n"
      "\n"
      "Runs a host with the quiesce shim registered as the \"unix\" VFS, commits\n"
      "N transactions into one database per journal mode (wal, delete,\n"
      "truncate, persist), one thread each, with rollbacks and checkpoints\n"
      "mixed in, and prints the generation, position and counters the shim\n"
      "tracked. The generation must equal the commits made.\n"
      "\n"
      "--socket PATH starts the control server there (\"\" for the default\n"
      "path). --serve SECONDS then keeps the host running that long, committing\n"
      "N times a second (--rate) into a WAL and a rollback database, so that\n"
      "quiescectl can list, inspect and watch it; --writable lets clients hold\n"
      "and inject too.\n"
      "\n"
      "--gecko runs a Gecko-like host: N origins (default 1) with Gecko's Cache\n"
      "API storage under PROFILE/storage/default/<origin>/cache (caches.sqlite\n"
      "with Gecko's schema and settings, bodies in morgue/), one thread and one\n"
      "connection each, no busy handler. Each origin does --rate operations a\n"
      "second (default 20; 0: back to back) for --seconds S (default 2): puts\n"
      "of --body-size byte bodies (default 4096) over --urls distinct URLs\n"
      "(default 100; 0: always a new one), and every --delete-every'th\n"
      "operation (default 5; 0: none) a delete; --fill N first puts N\n"
      "distinct URLs back to back. Prints the databases once\n"
      "open, then a summary with transaction latencies; --log writes every\n"
      "committed operation as a JSON line. SIGINT or SIGTERM ends the load\n"
      "early, as if its time were up. Exits 1 if any host operation\n"
      "failed.\n");
}

bool Exec(sqlite3* db, const char* sql) {
  char* err = nullptr;
  if (sqlite3_exec(db, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    std::fprintf(stderr, "hostsim: %s: %s\n", sql, err ? err : "?");
    sqlite3_free(err);
    return false;
  }
  return true;
}

// Commits `commits` transactions; returns the generation the shim should
// report afterwards (what it reported after setting up, plus commits made).
uint64_t Work(const std::string& path, const char* journal_mode, int commits) {
  sqlite3* db = nullptr;
  if (sqlite3_open(path.c_str(), &db) != SQLITE_OK) return 0;
  std::string mode = std::string("PRAGMA journal_mode=") + journal_mode;
  uint64_t made = 0;
  if (Exec(db, mode.c_str()) &&
      Exec(db, "CREATE TABLE IF NOT EXISTS t(id INTEGER PRIMARY KEY, v)")) {
    made = quiesce::Context::Get()->FindByPath(path)->Info().generation;
    for (int i = 0; i < commits; ++i) {
      if (Exec(db, "INSERT INTO t(v) VALUES (randomblob(200))")) ++made;
      if (i % 10 == 0) {  // a rollback: not a commit
        Exec(db, "BEGIN; DELETE FROM t; ROLLBACK");
      }
      if (i % 50 == 0) Exec(db, "PRAGMA wal_checkpoint(TRUNCATE)");
    }
  }
  sqlite3_close(db);
  return made;
}

// --serve: commits at opt.rate per second into one WAL and one rollback
// database until opt.serve seconds have passed, for clients to observe.
int Serve(const Options& opt) {
  const char* modes[] = {"wal", "delete"};
  std::vector<sqlite3*> dbs;
  for (const char* mode : modes) {
    const std::string path = opt.dir + "/serve-" + mode + ".db";
    sqlite3* db = nullptr;
    if (sqlite3_open(path.c_str(), &db) != SQLITE_OK) return 1;
    dbs.push_back(db);
    const std::string setup = std::string("PRAGMA journal_mode=") + mode +
        "; CREATE TABLE IF NOT EXISTS t(id INTEGER PRIMARY KEY, v)";
    if (!Exec(db, setup.c_str())) return 1;
  }
  std::printf("hostsim: serving for %ds, %d commits/s per database\n",
              opt.serve, opt.rate);
  std::fflush(stdout);
  const auto period = std::chrono::microseconds(1000000 / std::max(1, opt.rate));
  const auto end = std::chrono::steady_clock::now() +
                   std::chrono::seconds(opt.serve);
  auto next = std::chrono::steady_clock::now();
  long commits = 0, errors = 0;
  while (next < end) {
    for (sqlite3* db : dbs) {
      // No busy handler, as Gecko's cache connection has none: any
      // SQLITE_BUSY caused by a client would show here as an error.
      if (Exec(db, "INSERT INTO t(v) VALUES (randomblob(100))")) {
        ++commits;
      } else {
        ++errors;
      }
    }
    next += period;
    std::this_thread::sleep_until(next);
  }
  for (sqlite3* db : dbs) sqlite3_close(db);
  std::printf("hostsim: %ld host commits, %ld host errors\n", commits, errors);
  return errors == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  Options opt;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> const char* {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "hostsim: %s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    // A whole number from `min` up: anything else ends the run (exit 2).
    auto number = [&](int min) -> int {
      const char* text = next();
      const auto n = quiesce::tools::ParseNumber(text, min, INT_MAX);
      if (!n) {
        std::fprintf(stderr,
                     "hostsim: %s wants a whole number from %d, not '%s'\n",
                     a.c_str(), min, text);
        std::exit(2);
      }
      return static_cast<int>(*n);
    };
    if (a == "--dir") opt.dir = next();
    else if (a == "--commits") opt.commits = number(0);
    else if (a == "--seconds") opt.load.seconds = number(0);
    else if (a == "--socket") opt.socket = next();
    else if (a == "--serve") opt.serve = number(0);
    else if (a == "--rate") opt.rate = number(0);
    else if (a == "--writable") opt.writable = true;
    else if (a == "--gecko") opt.gecko = true;
    else if (a == "--origins") opt.load.origins = number(1);
    else if (a == "--body-size") opt.load.body_size = static_cast<size_t>(number(0));
    else if (a == "--delete-every") opt.load.delete_every = number(0);
    else if (a == "--urls") opt.load.urls = number(0);
    else if (a == "--fill") opt.load.fill = number(0);
    else if (a == "--log") opt.log = next();
    else if (a == "-h" || a == "--help") { Usage(stdout); return 0; }
    else { Usage(stderr); return 2; }
  }

  if (!quiesce::hostsim::UseMimallocForSqlite()) {
    std::fprintf(stderr, "hostsim: SQLite refused mimalloc as its allocator\n");
    return 1;
  }
  if (sqlite3_initialize() != SQLITE_OK) {
    std::fprintf(stderr, "hostsim: sqlite3_initialize failed\n");
    return 1;
  }
  quiesce_config config{};
  config.size = sizeof(config);
  config.vfs_name = "unix";  // take over the default VFS under its own name
  if (!opt.socket.empty()) config.socket_path = opt.socket.c_str();
  if (opt.writable) config.writable = "1";
  if (quiesce_register(&config) != SQLITE_OK) {
    std::fprintf(stderr, "hostsim: quiesce_register failed\n");
    return 1;
  }
  if (opt.gecko) {
    opt.load.rate = opt.rate;
    // SIGINT or SIGTERM ends the load early and the run as at its end (a
    // benchmark stops it when its steps are done and reads the log).
    struct sigaction stop = {};
    stop.sa_handler = [](int) { g_stop.store(true); };
    sigaction(SIGINT, &stop, nullptr);
    sigaction(SIGTERM, &stop, nullptr);
    opt.load.stop = &g_stop;
    const int rc = quiesce::hostsim::RunGeckoHost(opt.dir, opt.load, opt.log,
                                                  stdout);
    quiesce_shutdown();
    return rc;
  }
  if (opt.serve > 0) {
    const int rc = Serve(opt);
    quiesce_shutdown();
    return rc;
  }
  const char* modes[] = {"wal", "delete", "truncate", "persist"};
  std::vector<std::thread> threads;
  std::vector<uint64_t> made(4);
  std::vector<sqlite3*> keep_open(4);
  for (int m = 0; m < 4; ++m) {
    const std::string path = opt.dir + "/hostsim-" + modes[m] + ".db";
    unlink(path.c_str());
    unlink((path + "-wal").c_str());
    sqlite3_open(path.c_str(), &keep_open[m]);  // keeps the database listed
    threads.emplace_back([&, m, path] { made[m] = Work(path, modes[m], opt.commits); });
  }
  for (auto& t : threads) t.join();

  std::printf("%-4s %-28s %-9s %-6s %10s %10s %-24s %8s\n", "id", "database",
              "journal", "lock", "commits", "generation", "position", "pages");
  int bad = 0;
  for (int m = 0; m < 4; ++m) {
    auto db = quiesce::Context::Get()->FindByPath(
        opt.dir + "/hostsim-" + modes[m] + ".db");
    if (!db) continue;
    const quiesce::DatabaseInfo info = db->Info();
    char pos[64];
    if (info.position.wal) {
      std::snprintf(pos, sizeof(pos), "wal %08x:%08x@%u", info.position.salt1,
                    info.position.salt2, info.position.mx_frame);
    } else {
      std::snprintf(pos, sizeof(pos), "counter %u", info.position.change_counter);
    }
    std::string name = info.path.substr(info.path.rfind('/') + 1);
    const uint64_t expected = made[m];
    std::printf("%-4llu %-28s %-9s %-6s %10llu %10llu %-24s %8u%s\n",
                static_cast<unsigned long long>(info.id), name.c_str(),
                quiesce::JournalModeName(info.journal_mode),
                quiesce::LockingModeName(info.locking_mode),
                static_cast<unsigned long long>(expected),
                static_cast<unsigned long long>(info.generation), pos,
                info.db_pages, info.generation == expected ? "" : "  MISMATCH");
    if (info.generation != expected) ++bad;
  }
  for (sqlite3* db : keep_open) sqlite3_close(db);
  return bad == 0 ? 0 : 1;
}
