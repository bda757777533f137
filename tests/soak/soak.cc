// soak: a long run of the torture workload (host.h) in a host process of
// its own, with clients taking snapshots, injecting and holding over the
// control socket, while the host's memory, open fds, threads and WAL size
// are sampled; at the end the last quarter of the run is judged against
// the first (probe.h): nothing may grow without bound, the host may see no
// error, every client request must succeed and every tenth snapshot must
// pass integrity_check.
//
//   soak [--seconds N] [--interval S] [--report FILE]
//   soak --host DIR SOCKET      (the host process; the driver starts it)
//
// The report (Markdown) goes to FILE, or stdout; docs/reliability.md holds
// the run made for the record.
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sqlite3.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "client.h"
#include "host.h"
#include "probe.h"

extern char** environ;

namespace quiesce::soak {
namespace {

using Clock = std::chrono::steady_clock;
using control::Client;
using control::json;
using control::Message;

struct Options {
  int seconds = 600;
  int interval = 5;
  std::string report;
};

struct ClientTotals {
  std::atomic<uint64_t> snapshots{0}, injections{0}, holds{0}, errors{0};
  // Requests refused because the holder client had the point: contention
  // between the soak's own clients, as documented, not a fault.
  std::atomic<uint64_t> contended{0};
};

void CountError(ClientTotals& totals, const std::string& what,
                const Message& reply, const std::string& error) {
  if (reply.error_code == "busy" &&
      reply.error_message.find("another client holds") != std::string::npos) {
    totals.contended.fetch_add(1);
    return;
  }
  totals.errors.fetch_add(1);
  std::fprintf(stderr, "soak: %s failed: %s %s%s\n", what.c_str(),
               reply.error_code.c_str(), reply.error_message.c_str(),
               error.c_str());
}

std::unique_ptr<Client> ConnectTo(const std::string& socket) {
  std::string error;
  for (int i = 0; i < 100; ++i) {
    if (auto c = Client::Connect(socket, 2000, &error)) return c;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  std::fprintf(stderr, "soak: cannot connect to %s: %s\n", socket.c_str(),
               error.c_str());
  return nullptr;
}

bool IntegrityOk(const std::string& image) {
  sqlite3* db = nullptr;
  bool ok = false;
  if (sqlite3_open_v2(image.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) ==
      SQLITE_OK) {
    sqlite3_stmt* st = nullptr;
    if (sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, nullptr) ==
            SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW) {
      ok = std::string(reinterpret_cast<const char*>(
               sqlite3_column_text(st, 0))) == "ok";
    }
    sqlite3_finalize(st);
  }
  sqlite3_close(db);
  return ok;
}

// Snapshots of the databases in turn, every 200 ms.
void Snapshotter(const std::string& socket, const std::vector<std::string>& dbs,
                 const std::string& dir, const std::atomic<bool>& stop,
                 ClientTotals& totals) {
  auto client = ConnectTo(socket);
  if (!client) return totals.errors.fetch_add(1), void();
  const std::string image = dir + "/snapshot.db";
  for (uint64_t n = 0; !stop.load(); ++n) {
    const int fd = open(image.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
                        0600);
    Message reply;
    std::string error;
    const Client::Status s = client->Call(
        "snapshot", json{{"db", dbs[n % dbs.size()]}}, &reply, 60000, &error,
        {fd});
    close(fd);
    if (s != Client::Status::kOk || !reply.ok) {
      CountError(totals, "snapshot", reply, error);
    } else if (n % 10 == 0 && !IntegrityOk(image)) {
      totals.errors.fetch_add(1);
      std::fprintf(stderr, "soak: a snapshot fails integrity_check\n");
    } else {
      totals.snapshots.fetch_add(1);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
}

// An injection every 20 ms, alternating databases; every fourth passes its
// blob by descriptor.
void Injector(const std::string& socket, const std::vector<std::string>& dbs,
              const std::atomic<bool>& stop, ClientTotals& totals) {
  auto client = ConnectTo(socket);
  if (!client) return totals.errors.fetch_add(1), void();
  for (uint64_t n = 0; !stop.load(); ++n) {
    json args{{"db", dbs[n % dbs.size()]}};
    std::vector<int> fds;
    if (n % 4 == 0) {
      const int fd = memfd_create("soak-blob", MFD_CLOEXEC);
      const std::string blob(2048, 'b');
      if (fd < 0 || write(fd, blob.data(), blob.size()) !=
                        static_cast<ssize_t>(blob.size())) {
        totals.errors.fetch_add(1);
      }
      lseek(fd, 0, SEEK_SET);
      fds.push_back(fd);
      args["sql"] = "INSERT INTO t(v) VALUES (:b)";
      args["params"] = json{{"b", 0}};
    } else {
      args["sql"] = "INSERT INTO t(v) VALUES (zeroblob(300))";
    }
    Message reply;
    std::string error;
    const Client::Status s =
        client->Call("inject", args, &reply, 10000, &error, fds);
    for (int fd : fds) close(fd);
    if (s != Client::Status::kOk || !reply.ok) {
      CountError(totals, "inject", reply, error);
    } else {
      totals.injections.fetch_add(1);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

// A 50 ms hold every two seconds, alternating databases.
void Holder(const std::string& socket, const std::vector<std::string>& dbs,
            const std::atomic<bool>& stop, ClientTotals& totals) {
  auto client = ConnectTo(socket);
  if (!client) return totals.errors.fetch_add(1), void();
  for (uint64_t n = 0; !stop.load(); ++n) {
    std::this_thread::sleep_for(std::chrono::seconds(2));
    Message reply;
    std::string error;
    if (client->Call("hold", json{{"db", dbs[n % dbs.size()]},
                                  {"lease_ms", 1000}},
                     &reply, 10000, &error) != Client::Status::kOk ||
        !reply.ok) {
      CountError(totals, "hold", reply, error);
      continue;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    Message released;
    if (client->Call("release", json{{"hold", *reply.id}}, &released, 10000,
                     &error) != Client::Status::kOk ||
        !released.ok) {
      CountError(totals, "release", released, error);
    } else {
      totals.holds.fetch_add(1);
    }
  }
}

struct Host {
  pid_t pid = -1;
  int stdin_fd = -1;   // closing it ends the host
  FILE* out = nullptr; // its stdout
};

Host StartHost(const std::string& dir, const std::string& socket) {
  int in[2], out[2];
  Host h;
  if (pipe2(in, O_CLOEXEC) != 0 || pipe2(out, O_CLOEXEC) != 0) return h;
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, in[0], STDIN_FILENO);
  posix_spawn_file_actions_adddup2(&actions, out[1], STDOUT_FILENO);
  std::string self = std::filesystem::read_symlink("/proc/self/exe");
  std::vector<std::string> args = {self, "--host", dir, socket};
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  if (posix_spawn(&h.pid, self.c_str(), &actions, nullptr, argv.data(),
                  environ) != 0) {
    h.pid = -1;
  }
  posix_spawn_file_actions_destroy(&actions);
  close(in[0]);
  close(out[1]);
  h.stdin_fd = in[1];
  h.out = fdopen(out[0], "r");
  return h;
}

std::string ReadLine(FILE* f) {
  char line[256];
  if (f == nullptr || std::fgets(line, sizeof(line), f) == nullptr) return "";
  std::string s(line);
  if (!s.empty() && s.back() == '\n') s.pop_back();
  return s;
}

std::string Row(const Sample& s) {
  char row[256];
  std::snprintf(row, sizeof(row),
                "| %.0f | %llu | %llu | %llu | %llu | %llu | %llu | %llu |",
                s.seconds, static_cast<unsigned long long>(s.rss_kib),
                static_cast<unsigned long long>(s.fds),
                static_cast<unsigned long long>(s.threads),
                static_cast<unsigned long long>(s.wal_bytes),
                static_cast<unsigned long long>(s.snapshots),
                static_cast<unsigned long long>(s.injections),
                static_cast<unsigned long long>(s.holds));
  return row;
}

int Drive(const Options& opt) {
  std::string tmpl = (std::filesystem::temp_directory_path() /
                      "quiesce-soak-XXXXXX").string();
  if (mkdtemp(tmpl.data()) == nullptr) return 1;
  const std::string dir = tmpl;
  const std::string socket = dir + "/control.sock";
  Host host = StartHost(dir, socket);
  if (host.pid < 0 || ReadLine(host.out) != "host: ready") {
    std::fprintf(stderr, "soak: the host did not start\n");
    return 1;
  }
  const std::vector<std::string> dbs = {
      std::filesystem::canonical(dir + "/" + kWalDb).string(),
      std::filesystem::canonical(dir + "/" + kRollbackDb).string(),
      std::filesystem::canonical(dir + "/" + kExclusiveDb).string()};
  // Injections are refused under exclusive locking: the first two only.
  const std::vector<std::string> inject_dbs(dbs.begin(), dbs.begin() + 2);
  std::atomic<bool> stop{false};
  ClientTotals totals;
  std::vector<std::thread> clients;
  clients.emplace_back(Snapshotter, socket, std::cref(dbs), dir,
                       std::cref(stop), std::ref(totals));
  clients.emplace_back(Injector, socket, std::cref(inject_dbs),
                       std::cref(stop), std::ref(totals));
  clients.emplace_back(Holder, socket, std::cref(dbs), std::cref(stop),
                       std::ref(totals));

  std::vector<Sample> samples;
  const Clock::time_point start = Clock::now();
  const Clock::time_point end = start + std::chrono::seconds(opt.seconds);
  bool alive = true;
  for (Clock::time_point next = start; next <= end && alive;
       next += std::chrono::seconds(opt.interval)) {
    std::this_thread::sleep_until(next);
    Sample s;
    s.seconds = std::chrono::duration<double>(Clock::now() - start).count();
    alive = Probe(host.pid, dbs[0] + "-wal", &s);
    s.snapshots = totals.snapshots.load();
    s.injections = totals.injections.load();
    s.holds = totals.holds.load();
    s.client_errors = totals.errors.load();
    if (alive) samples.push_back(s);
    std::fprintf(stderr, "%s\n", Row(s).c_str());
  }
  stop.store(true);
  for (std::thread& t : clients) t.join();
  close(host.stdin_fd);
  const std::string host_summary = ReadLine(host.out);
  int wstatus = 0;
  waitpid(host.pid, &wstatus, 0);
  if (host.out) fclose(host.out);
  std::filesystem::remove_all(dir);

  const Judgement judged = Judge(samples);
  const bool host_ok = alive && WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 0;
  const bool pass = judged.bounded && host_ok && totals.errors.load() == 0;

  FILE* report = opt.report.empty() ? stdout : std::fopen(opt.report.c_str(), "w");
  if (report == nullptr) return 1;
  std::fprintf(report,
               "Soak: %d s, a sample every %d s; %s; client: %llu snapshots, "
               "%llu injections, %llu holds, %llu refused while another "
               "client held the point, %llu errors. Verdict: %s.\n\n",
               opt.seconds, opt.interval,
               host_summary.empty() ? "host: no summary (it died)"
                                    : host_summary.c_str(),
               static_cast<unsigned long long>(totals.snapshots.load()),
               static_cast<unsigned long long>(totals.injections.load()),
               static_cast<unsigned long long>(totals.holds.load()),
               static_cast<unsigned long long>(totals.contended.load()),
               static_cast<unsigned long long>(totals.errors.load()),
               pass ? "PASS" : "FAIL");
  std::fprintf(report,
               "| metric | max, first quarter | max, last quarter | limit | "
               "|\n|---|---|---|---|---|\n");
  for (const std::string& line : judged.lines) {
    std::fprintf(report, "%s\n", line.c_str());
  }
  std::fprintf(report,
               "\n| s | RSS KiB | fds | threads | WAL bytes | snapshots | "
               "injections | holds |\n|---|---|---|---|---|---|---|---|\n");
  // At most about 20 rows: every k-th sample, and the last.
  const size_t k = std::max<size_t>(1, samples.size() / 20);
  for (size_t i = 0; i < samples.size(); ++i) {
    if (i % k == 0 || i + 1 == samples.size()) {
      std::fprintf(report, "%s\n", Row(samples[i]).c_str());
    }
  }
  if (report != stdout) std::fclose(report);
  return pass ? 0 : 1;
}

}  // namespace
}  // namespace quiesce::soak

int main(int argc, char** argv) {
  using namespace quiesce::soak;
  if (argc == 4 && std::string(argv[1]) == "--host") {
    return RunHost(argv[2], argv[3]);
  }
  Options opt;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const bool has_value = i + 1 < argc;
    if (a == "--seconds" && has_value) {
      opt.seconds = std::atoi(argv[++i]);
    } else if (a == "--interval" && has_value) {
      opt.interval = std::max(1, std::atoi(argv[++i]));
    } else if (a == "--report" && has_value) {
      opt.report = argv[++i];
    } else {
      std::fprintf(stderr,
                   "usage: soak [--seconds N] [--interval S] [--report FILE]\n");
      return 2;
    }
  }
  // A host that dies must not kill the driver through a closed pipe.
  signal(SIGPIPE, SIG_IGN);
  return Drive(opt);
}
