// bench_watch: what a watch client costs the host. In one process, a host
// with the shim commits small WAL transactions on one connection, in
// alternating rounds with no client and with a watch client attached (its
// own thread, reading over the control socket); prints the per-commit cost
// of both side by side with their ratio, and the commit-to-event latency
// (the event's commit time to its arrival at the client) p50/p99.
#include <sqlite3.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "../number_flag.h"
#include "client.h"
#include "context.h"
#include "quiesce/quiesce.h"
#include "server.h"

namespace {

using quiesce::control::Client;
using quiesce::control::json;
using quiesce::control::Message;
using Clock = std::chrono::steady_clock;

struct Options {
  int commits = 2000;  // per round
  int rounds = 6;      // rounds of each kind, interleaved
};

int64_t WallUs() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(p * v.size()))];
}

double Mean(const std::vector<double>& v) {
  double sum = 0;
  for (double x : v) sum += x;
  return v.empty() ? 0 : sum / v.size();
}

// Commits `n` transactions, appending each one's duration in microseconds.
bool CommitRound(sqlite3* db, int n, std::vector<double>* cost_us) {
  for (int i = 0; i < n; ++i) {
    const auto t0 = Clock::now();
    if (sqlite3_exec(db, "INSERT INTO t(v) VALUES (randomblob(100))", nullptr,
                     nullptr, nullptr) != SQLITE_OK) {
      std::fprintf(stderr, "bench_watch: %s\n", sqlite3_errmsg(db));
      return false;
    }
    cost_us->push_back(
        std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
  }
  return true;
}

// A watch client on its own thread, recording commit-to-event latencies
// until it has seen `want` commits.
class Watcher {
 public:
  Watcher(const std::string& socket, int want, std::vector<double>* latency_us)
      : want_(want), latency_us_(latency_us) {
    std::string error;
    client_ = Client::Connect(socket, 5000, &error);
    Message reply;
    if (!client_ || client_->Call("watch", json::object(), &reply, 5000,
                                  &error) != Client::Status::kOk ||
        !reply.ok) {
      std::fprintf(stderr, "bench_watch: watch: %s\n", error.c_str());
      std::exit(1);
    }
    thread_ = std::thread([this] { Run(); });
  }
  ~Watcher() { thread_.join(); }

 private:
  void Run() {
    while (seen_.load() < want_) {
      Message m;
      std::string error;
      if (client_->Read(&m, 10000, &error) != Client::Status::kOk) {
        std::fprintf(stderr, "bench_watch: read: %s\n", error.c_str());
        return;
      }
      if (!m.is_event || m.event != "commit") continue;
      latency_us_->push_back(
          static_cast<double>(WallUs() - m.body["time_us"].get<int64_t>()));
      ++seen_;
    }
  }

  const int want_;
  std::vector<double>* latency_us_;
  std::unique_ptr<Client> client_;
  std::atomic<int> seen_{0};
  std::thread thread_;
};

int Main(int argc, char** argv) {
  Options opt;
  for (int i = 1; i < argc; i += 2) {
    const std::string a = argv[i];
    const auto n = i + 1 < argc
                       ? quiesce::tools::ParseNumber(argv[i + 1], 1, INT_MAX)
                       : std::nullopt;
    if (n && a == "--commits") opt.commits = static_cast<int>(*n);
    else if (n && a == "--rounds") opt.rounds = static_cast<int>(*n);
    else {
      std::fprintf(stderr, "usage: bench_watch [--commits N] [--rounds R]\n");
      return 2;
    }
  }
  char tmpl[] = "/tmp/bench-watch-XXXXXX";
  if (mkdtemp(tmpl) == nullptr) return 1;
  const std::string dir = tmpl;

  quiesce_config config{};
  config.size = sizeof(config);
  config.vfs_name = "quiesce";
  config.socket_path = nullptr;  // started below, on a socket of our own
  if (quiesce_register(&config) != SQLITE_OK) return 1;
  quiesce::control::ServerOptions options;
  options.socket = dir + "/bench.sock";
  options.policy = {geteuid(), {}, ""};
  auto started = quiesce::control::Server::Start(quiesce::Context::Get(),
                                                 options);
  if (!started.ok()) {
    std::fprintf(stderr, "bench_watch: %s\n",
                 started.error().message.c_str());
    return 1;
  }
  std::unique_ptr<quiesce::control::Server> server =
      std::move(started.value());

  sqlite3* db = nullptr;
  sqlite3_open_v2((dir + "/bench.db").c_str(), &db,
                  SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, "quiesce");
  sqlite3_exec(db,
               "PRAGMA journal_mode=wal; PRAGMA synchronous=off;"
               "CREATE TABLE t(id INTEGER PRIMARY KEY, v)",
               nullptr, nullptr, nullptr);

  std::vector<double> alone, watched, latency;
  CommitRound(db, opt.commits / 4, &alone);  // warm-up, not counted
  alone.clear();
  for (int r = 0; r < opt.rounds; ++r) {
    if (!CommitRound(db, opt.commits, &alone)) return 1;
    Watcher watcher(server->socket(), opt.commits, &latency);
    if (!CommitRound(db, opt.commits, &watched)) return 1;
    // ~Watcher waits for the round's last event.
  }
  sqlite3_close(db);
  server.reset();
  std::filesystem::remove_all(dir);

  std::printf("%d rounds x %d WAL commits (synchronous=off), each kind\n",
              opt.rounds, opt.commits);
  std::printf("%-22s %10s %10s %10s\n", "host commit cost (us)", "mean", "p50",
              "p99");
  std::printf("%-22s %10.2f %10.2f %10.2f\n", "no client", Mean(alone),
              Percentile(alone, 0.5), Percentile(alone, 0.99));
  std::printf("%-22s %10.2f %10.2f %10.2f\n", "watch client attached",
              Mean(watched), Percentile(watched, 0.5),
              Percentile(watched, 0.99));
  std::printf("%-22s %10.3f %10.3f %10.3f\n", "ratio (watched/none)",
              Mean(watched) / Mean(alone),
              Percentile(watched, 0.5) / Percentile(alone, 0.5),
              Percentile(watched, 0.99) / Percentile(alone, 0.99));
  std::printf("commit-to-event latency (us): p50 %.0f  p99 %.0f  (%zu events)\n",
              Percentile(latency, 0.5), Percentile(latency, 0.99),
              latency.size());
  return latency.size() == watched.size() ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  // A failed allocation or filesystem call ends the run with its message,
  // not with std::terminate.
  try {
    return Main(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_watch: %s\n", e.what());
    return 1;
  }
}
