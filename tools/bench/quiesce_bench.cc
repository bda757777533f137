// quiesce_bench: snapshots and injections against a live host workload,
// side by side with the alternatives, in one run (docs/benchmarks.md).
//
//   quiesce_bench snapshot [--mb N] [--seconds S] [--dir D] [--mode wal|delete]
//                          [--locking normal|exclusive]
//   quiesce_bench inject   [--seconds S] [--dir D] [--mode wal|delete]
//
// The host is this process: the shim registered as "quiesce", a writer
// thread committing as fast as it can with no busy handler (as Gecko's
// cache connection has none). The alternatives run in child processes of
// this same binary (`child-*` subcommands) with their own, plain SQLite
// connections, the way another process would do it today.
#include <spawn.h>
#include <sqlite3.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
#include <fcntl.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "../number_flag.h"
#include "context.h"
#include "inject.h"
#include "quiesce/quiesce.h"
#include "snapshot.h"

extern char** environ;

namespace {

using Clock = std::chrono::steady_clock;

double Ms(Clock::duration d) {
  return std::chrono::duration<double, std::milli>(d).count();
}

struct Stats {
  double p50 = 0, p99 = 0, max = 0;
  size_t n = 0;
};

Stats Summarize(std::vector<double> v) {
  Stats s;
  s.n = v.size();
  if (v.empty()) return s;
  std::sort(v.begin(), v.end());
  s.p50 = v[v.size() / 2];
  s.p99 = v[std::min(v.size() - 1, v.size() * 99 / 100)];
  s.max = v.back();
  return s;
}

bool Exec(sqlite3* db, const std::string& sql) {
  return sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr) == SQLITE_OK;
}

std::string self_exe;

// Runs this binary with args and returns its stdout (one line of results).
std::string RunChild(const std::vector<std::string>& args) {
  int out[2];
  if (pipe(out) != 0) return "";
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, out[1], STDOUT_FILENO);
  posix_spawn_file_actions_addclose(&fa, out[0]);
  std::vector<char*> argv;
  argv.push_back(self_exe.data());
  std::vector<std::string> copy = args;
  for (auto& a : copy) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid;
  const int rc = posix_spawn(&pid, self_exe.c_str(), &fa, nullptr, argv.data(),
                             environ);
  posix_spawn_file_actions_destroy(&fa);
  close(out[1]);
  std::string text;
  char buf[512];
  ssize_t n;
  while ((n = read(out[0], buf, sizeof(buf))) > 0) text.append(buf, n);
  close(out[0]);
  if (rc == 0) waitpid(pid, nullptr, 0);
  while (!text.empty() && text.back() == '\n') text.pop_back();
  return text;
}

// The host's write load: one connection, small transactions, no busy
// handler; every commit's latency and every error recorded.
struct Host {
  std::string path;
  bool exclusive = false;  // PRAGMA locking_mode=EXCLUSIVE on its connection
  std::atomic<bool> stop{false};
  std::atomic<int> phase{0};
  std::vector<std::vector<double>> latencies{8};
  std::vector<int> errors = std::vector<int>(8, 0);
  std::thread thread;

  void Start(int rows) {
    thread = std::thread([this, rows] {
      sqlite3* db = nullptr;
      sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE, "quiesce");
      if (exclusive) {
        Exec(db, "PRAGMA locking_mode=EXCLUSIVE");
        Exec(db, "SELECT count(*) FROM kv");  // takes the lock, for good
      }
      unsigned seed = 1;
      while (!stop.load()) {
        const int p = phase.load();
        seed = seed * 1103515245 + 12345;
        const std::string sql =
            "BEGIN IMMEDIATE; UPDATE kv SET v = randomblob(1000) WHERE id = " +
            std::to_string(1 + seed % rows) + "; COMMIT";
        const auto t0 = Clock::now();
        if (!Exec(db, sql)) {
          ++errors[p];
          Exec(db, "ROLLBACK");
        } else {
          latencies[p].push_back(Ms(Clock::now() - t0));
        }
      }
      sqlite3_close(db);
    });
  }
  void Stop() {
    stop = true;
    thread.join();
  }
};

void Fill(const std::string& path, const char* mode, int rows) {
  sqlite3* db = nullptr;
  sqlite3_open_v2(path.c_str(), &db,
                  SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, "quiesce");
  Exec(db, std::string("PRAGMA journal_mode=") + mode);
  Exec(db, "PRAGMA synchronous=NORMAL");
  Exec(db, "CREATE TABLE IF NOT EXISTS kv(id INTEGER PRIMARY KEY, v BLOB)");
  Exec(db, "BEGIN");
  for (int i = 1; i <= rows; ++i) {
    Exec(db, "INSERT OR REPLACE INTO kv VALUES (" + std::to_string(i) +
                 ", randomblob(1000))");
  }
  Exec(db, "COMMIT");
  Exec(db, "PRAGMA wal_checkpoint(TRUNCATE)");
  sqlite3_close(db);
}

// The shim's count of host waits during one phase.
struct PhaseWaits {
  uint64_t gate = 0, own = 0, us = 0, stalls = 0;
  void Add(const quiesce::GateStats& before, const quiesce::GateStats& after) {
    gate += after.waits - before.waits;
    own += after.own_waits - before.own_waits;
    us += (after.wait_us - before.wait_us) + (after.own_wait_us - before.own_wait_us);
    stalls += after.stall_timeouts - before.stall_timeouts;
  }
};
constexpr int kPhases = 7;

void PrintLatency(const char* name, const Stats& s, int errors,
                  const std::string& more = "") {
  std::printf("| %-40s | %8zu | %8.3f | %8.3f | %8.2f | %6d |%s\n", name, s.n,
              s.p50, s.p99, s.max, errors, more.c_str());
}
struct Options {
  std::string dir = "/tmp";
  int mb = 100;
  int seconds = 4;
  std::string mode = "wal";
  bool exclusive = false;  // --locking exclusive
};

void Register() {
  quiesce_config config{};
  config.size = sizeof(config);
  config.vfs_name = "quiesce";
  config.base_vfs = "unix";
  if (quiesce_register(&config) != SQLITE_OK) {
    std::fprintf(stderr, "quiesce_bench: quiesce_register failed\n");
    std::exit(1);
  }
}

int Snapshot(const Options& o) {
  Register();
  const std::string live = o.dir + "/bench-live.db";
  const std::string out = o.dir + "/bench-snap.db";
  std::remove(live.c_str());
  std::remove((live + "-wal").c_str());
  const int rows = o.mb * 1000;
  std::fprintf(stderr, "filling a %d MB database...\n", o.mb);
  Fill(live, o.mode.c_str(), rows);
  // Keeps the database open (and listed) between the phases; under
  // exclusive locking the host's connection must be the only one.
  sqlite3* keep = nullptr;
  if (!o.exclusive) {
    sqlite3_open_v2(live.c_str(), &keep, SQLITE_OPEN_READWRITE, "quiesce");
    Exec(keep, "SELECT count(*) FROM kv");
  }
  Host host;
  host.path = live;
  host.exclusive = o.exclusive;
  host.Start(rows);
  std::shared_ptr<quiesce::Database> db;
  while (!(db = quiesce::Context::Get()->FindByPath(live)) ||
         (o.exclusive &&
          db->Info().locking_mode != quiesce::LockingMode::kExclusive)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  const auto period = std::chrono::seconds(o.seconds);
  std::vector<double> snap_ms, copy_ms;
  uint64_t bytes = 0;
  std::vector<PhaseWaits> waits(kPhases);
  // Snapshots back to back for one period; `nice`: the copying thread at
  // the lowest CPU priority, so that what remains of the cost is shown to
  // be CPU, not waiting.
  auto back_to_back = [&](bool nice) {
    std::thread copier([&] {
      if (nice) setpriority(PRIO_PROCESS, static_cast<id_t>(gettid()), 19);
      const auto end = Clock::now() + period;
      while (Clock::now() < end) {
        const int fd = open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
        quiesce::SnapshotOptions so;
        so.deadline = Clock::now() + std::chrono::seconds(60);
        const auto t0 = Clock::now();
        auto r = quiesce::WriteSnapshot(*db, fd, so);
        close(fd);
        if (!r.ok()) {
          std::fprintf(stderr, "snapshot failed: %s\n",
                       r.error().message.c_str());
          continue;
        }
        if (!nice) snap_ms.push_back(Ms(Clock::now() - t0));
        bytes = r.value().bytes;
      }
    });
    copier.join();
  };
  // `n` snapshots whose clients never read their pipes, for one period.
  auto stalled = [&](int n) {
    std::atomic<bool> cancel{false};
    std::vector<std::thread> threads;
    std::vector<int> pipes;
    for (int i = 0; i < n; ++i) {
      int fds[2];
      if (pipe2(fds, O_CLOEXEC) != 0) break;
      pipes.push_back(fds[0]);
      pipes.push_back(fds[1]);
      threads.emplace_back([&, fd = fds[1]] {
        quiesce::SnapshotOptions so;
        so.deadline = Clock::now() + std::chrono::seconds(60);
        so.cancelled = &cancel;
        auto r = quiesce::WriteSnapshot(*db, fd, so);
        if (r.ok() || r.error().code != quiesce::ErrorCode::kBusy) {
          std::fprintf(stderr, "a stalled snapshot ended: %s\n",
                       r.ok() ? "ok" : r.error().message.c_str());
        }
      });
    }
    std::this_thread::sleep_for(period);
    cancel = true;
    for (auto& t : threads) t.join();
    for (int fd : pipes) close(fd);
  };
  auto run_phase = [&](int phase, const std::function<void()>& work) {
    const quiesce::GateStats before = db->Info().gate;
    host.phase = phase;
    work();
    waits[phase].Add(before, db->Info().gate);
  };
  // Each phase twice, interleaved: the machine is noisy.
  for (int round = 0; round < 2; ++round) {
    run_phase(0, [&] { std::this_thread::sleep_for(period); });
    run_phase(1, [&] { back_to_back(false); });
    run_phase(2, [&] { back_to_back(true); });
    run_phase(3, [&] { stalled(1); });
    run_phase(4, [&] { stalled(8); });
  }
  // Plain copies by another process, timed for the copy table.
  host.phase = 5;
  for (int i = 0; i < 5; ++i) {
    const std::string copied = RunChild({"child-copy", live, out});
    char* end = nullptr;
    const double ms = std::strtod(copied.c_str(), &end);
    if (end == copied.c_str()) {
      std::fprintf(stderr, "plain copy failed: %s\n", copied.c_str());
      continue;
    }
    copy_ms.push_back(ms);
  }
  host.phase = 6;
  // The alternatives, one at a time, against the same live workload.
  const std::string stable = RunChild({"child-copy-until-stable", live, out});
  // Under exclusive locking the backup API only ever gets BUSY: it would
  // spin for its 30 s.
  const std::string backup =
      o.exclusive ? "impossible: the database is locked exclusively"
                  : RunChild({"child-backup", live, out});
  const std::string vacuum = RunChild({"child-vacuum", live, out});
  host.Stop();
  sqlite3_close(keep);

  const Stats quiet = Summarize(host.latencies[0]);
  const Stats snap = Summarize(snap_ms), copy = Summarize(copy_ms);
  std::printf("database %.1f MB, journal_mode=%s, locking_mode=%s, host "
              "commits as fast as it can\n\n",
              bytes / 1e6, o.mode.c_str(), o.exclusive ? "exclusive" : "normal");
  std::printf("| host commit latency (ms)                 | commits  |   p50    |   p99    |   max    | errors | host waits: gate / own lock / ms in all / max_stall |\n");
  std::printf("|---|---|---|---|---|---|---|\n");
  const char* const kNames[kPhases] = {
      "no snapshots", "snapshots back to back",
      "snapshots back to back, copier at nice 19",
      "one snapshot, client never reads", "8 snapshots, clients never read",
      "plain copies by another process", "alternatives running (below)"};
  for (int p = 0; p < kPhases; ++p) {
    char more[128];
    std::snprintf(more, sizeof(more), " %llu / %llu / %.1f / %llu |",
                  static_cast<unsigned long long>(waits[p].gate),
                  static_cast<unsigned long long>(waits[p].own),
                  waits[p].us / 1000.0,
                  static_cast<unsigned long long>(waits[p].stalls));
    PrintLatency(kNames[p], Summarize(host.latencies[p]), host.errors[p],
                 more);
  }
  std::printf("\nratio to no snapshots (p50 / p99 / max):\n");
  for (int p = 1; p <= 4; ++p) {
    const Stats s = Summarize(host.latencies[p]);
    std::printf("  %-42s %.2f / %.2f / %.2f; commits per second %.2f\n",
                kNames[p], s.p50 / quiet.p50, s.p99 / quiet.p99,
                s.max / quiet.max,
                quiet.n == 0 ? 0.0 : static_cast<double>(s.n) / quiet.n);
  }
  std::printf("\n| copy | runs | median ms | MB/s |\n|---|---|---|---|\n");
  std::printf("| quiesce snapshot (consistent, checksummed) | %zu | %.1f | %.0f |\n",
              snap.n, snap.p50, bytes / 1e3 / snap.p50);
  std::printf("| plain copy of db + WAL (cp, inconsistent) | %zu | %.1f | %.0f |\n",
              copy.n, copy.p50, bytes / 1e3 / copy.p50);
  std::printf("\nsnapshot time / plain copy time: %.2f\n\n", snap.p50 / copy.p50);
  std::printf("alternatives from another process, during the same workload:\n");
  std::printf("  copy-until-stable: %s\n  backup API:        %s\n  VACUUM INTO:       %s\n",
              stable.c_str(), backup.c_str(), vacuum.c_str());
  const quiesce::GateStats g = db->Info().gate;
  std::printf("\nwhole run, counted in the shim: %llu host waits at the gate "
              "(longest %.3f ms), %llu for quiesce's own lock (longest %.3f "
              "ms), %llu at max_stall, %llu yields\n",
              static_cast<unsigned long long>(g.waits), g.max_wait_us / 1000.0,
              static_cast<unsigned long long>(g.own_waits),
              g.own_max_wait_us / 1000.0,
              static_cast<unsigned long long>(g.stall_timeouts),
              static_cast<unsigned long long>(g.yields));
  return 0;
}

int InjectBench(const Options& o) {
  Register();
  const std::string live = o.dir + "/bench-inject.db";
  std::remove(live.c_str());
  std::remove((live + "-wal").c_str());
  const int rows = 2000;
  Fill(live, o.mode.c_str(), rows);
  sqlite3* keep = nullptr;  // keeps the database open (and its stats)
  sqlite3_open_v2(live.c_str(), &keep, SQLITE_OPEN_READWRITE, "quiesce");
  Host host;
  host.path = live;
  host.Start(rows);
  const auto period = std::chrono::seconds(o.seconds);
  std::vector<double> gate_ms;
  int inject_errors = 0;
  auto db = [&] { return quiesce::Context::Get()->FindByPath(live); };
  while (!db()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  for (int round = 0; round < 2; ++round) {
    host.phase = 0;
    std::this_thread::sleep_for(period);
    host.phase = 1;  // quiesce injections, 3 rows every 20 ms
    for (auto end = Clock::now() + period; Clock::now() < end;) {
      quiesce::InjectRequest req;
      req.sql =
          "INSERT INTO kv(v) VALUES (randomblob(1000)); "
          "INSERT INTO kv(v) VALUES (randomblob(1000)); "
          "INSERT INTO kv(v) VALUES (randomblob(1000))";
      auto r = quiesce::Inject(*db(), req);
      if (r.ok()) {
        gate_ms.push_back(r.value().gate_closed_us / 1000.0);
      } else {
        ++inject_errors;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    host.phase = 2;  // the same SQL from another process, its own connection
    RunChild({"child-outside-writer", live, std::to_string(o.seconds)});
  }
  host.Stop();
  const Stats none = Summarize(host.latencies[0]);
  const Stats with_q = Summarize(host.latencies[1]);
  const Stats outside = Summarize(host.latencies[2]);
  const Stats gate = Summarize(gate_ms);
  std::printf("journal_mode=%s, host commits as fast as it can, no busy handler;\n"
              "injections of 3 rows every 20 ms\n\n", o.mode.c_str());
  std::printf("| host commit latency (ms)                 | commits  |   p50    |   p99    |   max    | errors |\n");
  std::printf("|---|---|---|---|---|---|\n");
  PrintLatency("no injections", none, host.errors[0]);
  PrintLatency("quiesce injections", with_q, host.errors[1]);
  PrintLatency("same SQL from an outside process", outside, host.errors[2]);
  std::printf("\nquiesce: %zu injections, %d failed; gate closed p50 %.3f ms, max %.3f ms\n",
              gate.n, inject_errors, gate.p50, gate.max);
  // What the gate itself cost the host: the longest a host lock request
  // waited at it (measured inside the shim), against the target of the
  // injection's own time plus 5 ms.
  const quiesce::DatabaseInfo info = db()->Info();
  const double waited = info.gate.max_wait_us / 1000.0;
  std::printf("longest host wait at the gate %.3f ms (%llu waits, %llu at max_stall)"
              " vs. longest injection + 5 ms = %.3f ms: %s\n",
              waited, static_cast<unsigned long long>(info.gate.waits),
              static_cast<unsigned long long>(info.gate.stall_timeouts),
              gate.max + 5.0, waited <= gate.max + 5.0 ? "within target" : "OVER target");
  sqlite3_close(keep);
  return 0;
}

// --- child processes: another process's ways, with a plain SQLite -------

int ChildCopy(const std::string& db, const std::string& out) {
  const auto t0 = Clock::now();
  // The WAL too when there is one (rollback mode has none).
  const std::string cmd = "cat '" + db + "' > '" + out + "' && { [ ! -e '" +
                          db + "-wal' ] || cat '" + db + "-wal' >> '" + out +
                          "'; }";
  if (std::system(cmd.c_str()) != 0) return 1;
  std::printf("%.3f\n", Ms(Clock::now() - t0));
  return 0;
}

int ChildCopyUntilStable(const std::string& db, const std::string& out) {
  const auto t0 = Clock::now();
  // The WAL too when there is one (rollback mode has none).
  const bool wal = access((db + "-wal").c_str(), F_OK) == 0;
  auto copy = [&](const std::string& to) {
    std::string cmd = "cp '" + db + "' '" + to + "'";
    if (wal) cmd += " && cp '" + db + "-wal' '" + to + "-wal'";
    return cmd;
  };
  auto same = [&] {
    std::string cmd = "cmp -s '" + out + ".a' '" + out + ".b'";
    if (wal) cmd += " && cmp -s '" + out + ".a-wal' '" + out + ".b-wal'";
    return cmd;
  };
  for (int attempt = 1; attempt <= 20; ++attempt) {
    const std::string cmd =
        copy(out + ".a") + " && " + copy(out + ".b") + " && " + same();
    if (std::system(cmd.c_str()) == 0) {
      std::printf("converged after %d attempts, %.0f ms\n", attempt,
                  Ms(Clock::now() - t0));
      return 0;
    }
  }
  std::printf("never converged in 20 attempts (%.0f ms)\n", Ms(Clock::now() - t0));
  return 0;
}

int ChildBackup(const std::string& db, const std::string& out) {
  sqlite3 *src = nullptr, *dst = nullptr;
  sqlite3_open_v2(db.c_str(), &src, SQLITE_OPEN_READONLY, "unix");
  std::remove(out.c_str());
  sqlite3_open(out.c_str(), &dst);
  const auto t0 = Clock::now();
  sqlite3_backup* b = sqlite3_backup_init(dst, "main", src, "main");
  int restarts = 0, busy = 0, steps = 0;
  int last_remaining = -1;
  int rc = SQLITE_OK;
  while (Ms(Clock::now() - t0) < 30000) {
    rc = sqlite3_backup_step(b, 100);
    ++steps;
    const int remaining = sqlite3_backup_remaining(b);
    if (last_remaining >= 0 && remaining > last_remaining) ++restarts;
    last_remaining = remaining;
    if (rc == SQLITE_BUSY || rc == SQLITE_LOCKED) ++busy;
    if (rc == SQLITE_DONE) break;
    if (rc != SQLITE_OK && rc != SQLITE_BUSY && rc != SQLITE_LOCKED) break;
  }
  sqlite3_backup_finish(b);
  std::printf("%s after %.0f ms, %d steps of 100 pages, %d restarts, %d BUSY\n",
              rc == SQLITE_DONE ? "done" : "gave up", Ms(Clock::now() - t0),
              steps, restarts, busy);
  sqlite3_close(dst);
  sqlite3_close(src);
  return 0;
}

int ChildVacuum(const std::string& db, const std::string& out) {
  sqlite3* src = nullptr;
  sqlite3_open_v2(db.c_str(), &src, SQLITE_OPEN_READONLY, "unix");
  std::remove(out.c_str());
  const auto t0 = Clock::now();
  const bool ok = Exec(src, "VACUUM INTO '" + out + "'");
  std::printf("%s in %.0f ms%s%s\n", ok ? "done" : "failed",
              Ms(Clock::now() - t0), ok ? "" : ": ",
              ok ? "" : sqlite3_errmsg(src));
  sqlite3_close(src);
  return 0;
}

int ChildOutsideWriter(const std::string& db, int seconds) {
  sqlite3* c = nullptr;
  sqlite3_open_v2(db.c_str(), &c, SQLITE_OPEN_READWRITE, "unix");
  sqlite3_busy_timeout(c, 5000);  // the outside writer waits; the host can't
  const auto end = Clock::now() + std::chrono::seconds(seconds);
  while (Clock::now() < end) {
    Exec(c, "BEGIN IMMEDIATE; INSERT INTO kv(v) VALUES (randomblob(1000)); "
            "INSERT INTO kv(v) VALUES (randomblob(1000)); "
            "INSERT INTO kv(v) VALUES (randomblob(1000)); COMMIT");
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  sqlite3_close(c);
  return 0;
}

void Usage(FILE* f) {
  std::fprintf(f,
      "usage: quiesce_bench snapshot [--mb N] [--seconds S] [--dir D]\n"
      "                              [--mode wal|delete] [--locking normal|exclusive]\n"
      "       quiesce_bench inject [--mode wal|delete] [--seconds S] [--dir D]\n"
      "\n"
      "Runs a host workload in this process with the shim loaded and measures\n"
      "snapshots or injections against it, side by side with the ways another\n"
      "process would do the same today. Prints markdown tables.\n");
}

}  // namespace

int main(int argc, char** argv) {
  self_exe = "/proc/self/exe";
  char resolved[4096];
  const ssize_t n = readlink("/proc/self/exe", resolved, sizeof(resolved) - 1);
  if (n > 0) self_exe.assign(resolved, static_cast<size_t>(n));
  if (argc < 2) {
    Usage(stderr);
    return 2;
  }
  const std::string cmd = argv[1];
  if (cmd == "child-copy" && argc == 4) return ChildCopy(argv[2], argv[3]);
  if (cmd == "child-copy-until-stable" && argc == 4) {
    return ChildCopyUntilStable(argv[2], argv[3]);
  }
  if (cmd == "child-backup" && argc == 4) return ChildBackup(argv[2], argv[3]);
  if (cmd == "child-vacuum" && argc == 4) return ChildVacuum(argv[2], argv[3]);
  if (cmd == "child-outside-writer" && argc == 4) {
    const auto seconds = quiesce::tools::ParseNumber(argv[3], 0, INT_MAX);
    if (!seconds) return 2;
    return ChildOutsideWriter(argv[2], static_cast<int>(*seconds));
  }
  Options o;
  for (int i = 2; i < argc; ++i) {
    const std::string a = argv[i];
    if (i + 1 >= argc) {
      Usage(stderr);
      return 2;
    }
    const char* value = argv[++i];
    if (a == "--dir") {
      o.dir = value;
    } else if (a == "--mode") {
      o.mode = value;
    } else if (a == "--locking" &&
               (std::strcmp(value, "normal") == 0 ||
                std::strcmp(value, "exclusive") == 0)) {
      o.exclusive = std::strcmp(value, "exclusive") == 0;
    } else if (a == "--mb" || a == "--seconds") {
      // --mb: at most 1 TiB, so that its rows (1,000 a MB) fit an int.
      const auto n = quiesce::tools::ParseNumber(
          value, 1, a == "--mb" ? (1 << 20) : INT_MAX);
      if (!n) {
        Usage(stderr);
        return 2;
      }
      (a == "--mb" ? o.mb : o.seconds) = static_cast<int>(*n);
    } else {
      Usage(stderr);
      return 2;
    }
  }
  if (cmd == "snapshot") return Snapshot(o);
  if (cmd == "inject") return InjectBench(o);
  if (cmd == "-h" || cmd == "--help") {
    Usage(stdout);
    return 0;
  }
  Usage(stderr);
  return 2;
}
