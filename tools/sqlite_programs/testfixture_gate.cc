// The gate-cycling mode of SQLite's testfixture: see testfixture_gate.h.
#include "testfixture_gate.h"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sqlite3.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include "context.h"
#include "database.h"

namespace quiesce_testfixture {
namespace {

using quiesce::Context;
using quiesce::Database;
using quiesce::Drain;
using quiesce::GateStats;
using quiesce::LockingMode;
using Clock = Database::Clock;
using std::chrono::microseconds;

// Bounds of the random times, in microseconds. A host waiter waits at most
// about a drain plus a lease plus a lapse: under 10 ms, against a max_stall
// of seconds.
constexpr int64_t kIntervalMinUs = 100;  // between background closes
constexpr int64_t kIntervalMaxUs = 4000;
constexpr int64_t kDrainMinUs = 500;  // drain deadline
constexpr int64_t kDrainMaxUs = 4000;
constexpr int64_t kLeaseMinUs = 1000;  // lease, after the drain budget
constexpr int64_t kLeaseMaxUs = 4000;
constexpr int64_t kLapseMinUs = 100;   // a lapsed lease: reopened this
constexpr int64_t kLapseMaxUs = 2000;  // much after it ran out
constexpr unsigned kLapseOneIn = 8;
constexpr int kKickMaxSteps = 64;      // a kick at least every 64 steps,
constexpr int kKickMaxStepsEarly = 8;  // or 8 in the first 256 steps of
constexpr uint64_t kEarlySteps = 256;  // a top testfixture (small files)
// How long a statement waits for the cycler to take its kick (it may be in
// the middle of another close: at most a drain, a lease and a lapse), and
// then for the gate to show closing.
constexpr auto kKickTakeWait = std::chrono::milliseconds(50);
constexpr auto kKickSeeWait = std::chrono::milliseconds(2);
// How long, and how often, a statement's close looks for the statement at
// the gate (it does not come when it is inside a transaction).
constexpr auto kWaiterWait = std::chrono::milliseconds(2);
constexpr auto kWaiterPoll = std::chrono::microseconds(50);
// The longest time a gate stays closed by the cycler; must stay below the
// lease cap (max_stall less its margin).
constexpr int64_t kLongestCloseUs = kDrainMaxUs + kLeaseMaxUs + kLapseMaxUs;

class Cycler {
 public:
  Cycler(uint64_t seed, std::string report, bool child)
      : seed_(seed),
        report_(std::move(report)),
        pid_(getpid()),
        early_steps_(child ? 0 : kEarlySteps),
        step_rng_(seed ^ 0x9e3779b97f4a7c15ULL),
        rng_(seed) {}

  // Starts the thread with every signal blocked in it, so that signals the
  // tests expect keep going to their own threads. Throws std::system_error.
  void Start() {
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    try {
      thread_ = std::thread(&Cycler::Run, this);
    } catch (...) {
      pthread_sigmask(SIG_SETMASK, &old, nullptr);
      throw;
    }
    pthread_sigmask(SIG_SETMASK, &old, nullptr);
  }

  // Stops and joins the thread, then writes the final report line. Only in
  // the process that started it: a child forked without exec has no such
  // thread (and the Cycler, never destroyed, keeps the std::thread alive).
  void StopAndReport() {
    if (getpid() != pid_) return;
    stopping_.store(true);
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    if (!thread_.joinable() || thread_.get_id() == std::this_thread::get_id()) {
      return;
    }
    thread_.join();
    Harvest(/*all=*/true);
    char line[512];
    std::snprintf(
        line, sizeof line,
        "quiesce-gate pid=%d seed=%llu attempts=%llu closes=%llu "
        "drain_timeouts=%llu errors=%llu lapsed=%llu write_gates=%llu "
        "kicks=%llu kicks_closed=%llu steps=%llu waits=%llu "
        "max_wait_us=%llu stall_timeouts=%llu revocations=%llu\n",
        static_cast<int>(pid_), U(seed_), U(attempts_), U(closes_),
        U(drain_timeouts_), U(errors_), U(lapsed_), U(write_gates_),
        U(kicks_.load()), U(kicks_closed_.load()), U(steps_.load()),
        U(stats_.waits), U(stats_.max_wait_us), U(stats_.stall_timeouts),
        U(stats_.revocations));
    std::string text = line;
    if (!first_error_.empty()) {
      text += "quiesce-gate-error pid=" + std::to_string(pid_) + " " +
              first_error_ + "\n";
    }
    WriteReport(text);
  }

  void WriteReport(const std::string& text) const {
    int fd = 2;
    if (!report_.empty()) {
      fd = open(report_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC,
                0644);
      if (fd < 0) return;
    }
    // One write: lines from several processes do not interleave.
    ssize_t n;
    do {
      n = write(fd, text.data(), text.size());
    } while (n < 0 && errno == EINTR);
    if (fd != 2) close(fd);
  }

  // Before a statement of the test code runs: every 1 to kKickMaxSteps
  // steps, hands the statement's main database to the cycler and lets the
  // statement go once the gate is closing.
  void BeforeStep(sqlite3_stmt* stmt) {
    steps_.fetch_add(1, std::memory_order_relaxed);
    if (stmt == nullptr || stopping_.load(std::memory_order_relaxed)) return;
    if (countdown_.fetch_sub(1, std::memory_order_relaxed) > 1) return;
    std::shared_ptr<Database> database;
    sqlite3* db = sqlite3_db_handle(stmt);
    const char* name =
        db != nullptr ? sqlite3_db_filename(db, "main") : nullptr;
    if (name != nullptr && *name != '\0') {
      if (Context* context = Context::Get())
        database = context->FindByPath(name);
    }
    if (database == nullptr) {
      // Not a database of the shim (memory, temp, another VFS): the next
      // step tries again.
      countdown_.store(1, std::memory_order_relaxed);
      return;
    }
    bool taken = false;
    {
      std::unique_lock<std::mutex> lock(mu_);
      if (!stop_ && kicked_ == nullptr) {
        kicked_ = database;
        const uint64_t seq = ++kick_seq_;
        kicks_.fetch_add(1, std::memory_order_relaxed);
        cv_.notify_all();
        taken = cv_.wait_for(lock, kKickTakeWait, [&] {
          return stop_ || taken_seq_ >= seq;
        }) && taken_seq_ >= seq;
      }
    }
    if (taken) {
      const Clock::time_point until = Clock::now() + kKickSeeWait;
      while (Clock::now() < until) {
        if (database->Info().gate_closed) {
          kicks_closed_.fetch_add(1, std::memory_order_relaxed);
          break;
        }
        std::this_thread::yield();
      }
    }
    countdown_.store(NextCountdown(), std::memory_order_relaxed);
  }

 private:
  static unsigned long long U(uint64_t v) { return v; }

  int NextCountdown() {
    const int most = steps_.load(std::memory_order_relaxed) < early_steps_
                         ? kKickMaxStepsEarly
                         : kKickMaxSteps;
    std::lock_guard<std::mutex> lock(step_rng_mu_);
    return std::uniform_int_distribution<int>(1, most)(step_rng_);
  }

  int64_t Uniform(int64_t lo, int64_t hi) {
    return std::uniform_int_distribution<int64_t>(lo, hi)(rng_);
  }

  // Log-uniform: as many sub-millisecond pauses as multi-millisecond ones.
  int64_t LogUniform(int64_t lo, int64_t hi) {
    std::uniform_real_distribution<double> d(std::log(double(lo)),
                                             std::log(double(hi)));
    return static_cast<int64_t>(std::exp(d(rng_)));
  }

  // Closes what statements ask for as soon as they ask, and a random open
  // database after each pause. A kick that comes just before the stop is
  // still carried out: every statement's kick gets its close attempt.
  void Run() {
    std::unique_lock<std::mutex> lock(mu_);
    for (;;) {
      const microseconds pause(LogUniform(kIntervalMinUs, kIntervalMaxUs));
      cv_.wait_for(lock, pause, [&] { return stop_ || kicked_ != nullptr; });
      std::shared_ptr<Database> db = std::move(kicked_);
      kicked_.reset();
      if (db != nullptr) {
        taken_seq_ = kick_seq_;
        cv_.notify_all();
      } else if (stop_) {
        break;
      }
      lock.unlock();
      const bool kicked = db != nullptr;
      if (!kicked) db = PickOpen();
      if (db != nullptr) Cycle(db, kicked);
      db.reset();
      Harvest(/*all=*/false);
      lock.lock();
    }
  }

  std::shared_ptr<Database> PickOpen() {
    Context* context = Context::Get();
    if (context == nullptr) return nullptr;
    std::vector<std::shared_ptr<Database>> open = context->Databases();
    if (open.empty()) return nullptr;
    return open[std::uniform_int_distribution<size_t>(0,
                                                      open.size() - 1)(rng_)];
  }

  // One close: a random drain level, readers let through or not, a short
  // drain deadline and lease; held a random time within the lease (for a
  // statement's close, until a request waits at the gate and then at least
  // half of what is left), or, one time in kLapseOneIn, past it.
  // A database in exclusive locking mode mostly gets the write gate that
  // snapshots use there (its locks never drop, so the other drains time
  // out), with a random WAL guard; others get it now and then, so that a
  // switch of locking mode can meet it closed.
  void Cycle(const std::shared_ptr<Database>& db, bool kicked) {
    Track(db);
    static constexpr Drain kLevels[] = {Drain::kHold, Drain::kInject,
                                        Drain::kWriters};
    const bool exclusive = db->Info().locking_mode == LockingMode::kExclusive;
    const bool write_gate = exclusive ? Uniform(0, 3) != 0 : Uniform(0, 7) == 0;
    const Drain level =
        write_gate ? Drain::kExclusiveWrites : kLevels[Uniform(0, 2)];
    // The WAL offset below which writes wait: all (as the gate closes),
    // none (a rollback-mode copy, or no WAL to read), or a random prefix.
    const int64_t guard_choice = Uniform(0, 2);
    const uint64_t wal_guard = guard_choice == 0 ? UINT64_MAX
                               : guard_choice == 1
                                   ? 0
                                   : static_cast<uint64_t>(Uniform(0, 1 << 20));
    const bool readers_may_proceed = Uniform(0, 1) == 1;
    const microseconds drain(Uniform(kDrainMinUs, kDrainMaxUs));
    const microseconds lease(Uniform(kLeaseMinUs, kLeaseMaxUs));
    const bool lapse = Uniform(0, kLapseOneIn - 1) == 0;
    const int64_t lapse_us = Uniform(kLapseMinUs, kLapseMaxUs);
    const int64_t hold_permille = Uniform(kicked ? 500 : 0, 1000);
    if (db->lease_cap() <= microseconds(kLongestCloseUs)) {
      // Cannot happen with max_stall >= 100 ms; never close past the cap.
      ++errors_;
      if (first_error_.empty())
        first_error_ = "lease cap below the cycle's longest close";
      return;
    }
    const Clock::time_point start = Clock::now();
    const Clock::time_point closed_until = start + drain + lease;
    ++attempts_;
    auto token =
        db->CloseGate(level, readers_may_proceed, start + drain, closed_until);
    if (!token.ok()) {
      if (token.error().code == quiesce::ErrorCode::kTimeout) {
        ++drain_timeouts_;
      } else {
        ++errors_;
        if (first_error_.empty()) first_error_ = token.error().message;
      }
      return;
    }
    ++closes_;
    if (write_gate) {
      ++write_gates_;
      if (wal_guard != UINT64_MAX) db->SetWalGuard(wal_guard);
    }
    if (kicked) {
      AwaitWaiter(*db, std::min(closed_until, Clock::now() + kWaiterWait));
    }
    const Clock::time_point now = Clock::now();
    Clock::time_point reopen_at = closed_until + microseconds(lapse_us);
    if (!lapse) {
      reopen_at = now;
      if (closed_until > now)
        reopen_at += (closed_until - now) * hold_permille / 1000;
    }
    std::this_thread::sleep_until(reopen_at);
    if (!db->ReopenGate(token.value())) ++lapsed_;
  }

  // A statement's close: before the hold is drawn, waits (until `until`)
  // for a host request to arrive at the gate, which is most likely the
  // statement's own: a host thread slow to run still meets the gate closed.
  static void AwaitWaiter(Database& db, Clock::time_point until) {
    const uint64_t before = db.Info().gate.waits;
    while (Clock::now() < until && db.Info().gate.waits == before) {
      std::this_thread::sleep_for(kWaiterPoll);
    }
  }

  void Track(const std::shared_ptr<Database>& db) {
    for (const auto& t : tracked_) {
      if (t == db) return;
    }
    tracked_.push_back(db);
  }

  // Adds the gate counts of the databases nobody else holds any more (the
  // host closed them: no more waits can happen there), or of all of them.
  // use_count() == 1 is final: no one is left to copy the pointer from.
  void Harvest(bool all) {
    for (size_t i = 0; i < tracked_.size();) {
      if (!all && tracked_[i].use_count() != 1) {
        ++i;
        continue;
      }
      const GateStats g = tracked_[i]->Info().gate;
      stats_.closes += g.closes;
      stats_.drain_timeouts += g.drain_timeouts;
      stats_.waits += g.waits;
      if (g.max_wait_us > stats_.max_wait_us)
        stats_.max_wait_us = g.max_wait_us;
      stats_.stall_timeouts += g.stall_timeouts;
      stats_.revocations += g.revocations;
      tracked_[i] = std::move(tracked_.back());
      tracked_.pop_back();
    }
  }

  const uint64_t seed_;
  const std::string report_;    // empty: stderr
  const pid_t pid_;             // the process that runs the thread
  const uint64_t early_steps_;  // steps with kicks every 1 to 8 steps
  std::thread thread_;

  std::mutex mu_;
  std::condition_variable cv_;        // kicks for the cycler, takes for kickers
  bool stop_ = false;                 // guarded by mu_
  std::shared_ptr<Database> kicked_;  // guarded by mu_: close this next
  uint64_t kick_seq_ = 0;             // guarded by mu_: kicks handed over
  uint64_t taken_seq_ = 0;            // guarded by mu_: kicks taken
  std::atomic<bool> stopping_{false};

  // The statements' side (any host thread).
  std::atomic<uint64_t> steps_{0}, kicks_{0}, kicks_closed_{0};
  std::atomic<int> countdown_{1};  // the first step on a database kicks
  std::mutex step_rng_mu_;
  std::mt19937_64 step_rng_;  // guarded by step_rng_mu_

  // The cycler thread's own; read by StopAndReport() after the join.
  std::mt19937_64 rng_;
  uint64_t attempts_ = 0, closes_ = 0, drain_timeouts_ = 0, errors_ = 0,
           lapsed_ = 0;
  uint64_t write_gates_ = 0;  // closes of the exclusive-locking write gate
  std::vector<std::shared_ptr<Database>> tracked_;  // databases closed
  GateStats stats_;          // harvested from the databases no longer tracked
  std::string first_error_;  // the first unexpected CloseGate error
};

// Set for the testfixtures that a testfixture in the gate mode starts.
constexpr char kChildVariable[] = "QUIESCE_TESTFIXTURE_GATE_CHILD";

// Never destroyed: a host thread may step (and look at it) during exit,
// after the static destructors.
std::atomic<Cycler*> g_cycler{nullptr};
std::once_flag g_decided;

void StopAtExit() {
  if (Cycler* c = g_cycler.load()) c->StopAndReport();
}

bool ParseSeed(const char* text, uint64_t* seed) {
  if (text == nullptr || *text < '0' || *text > '9') return false;
  errno = 0;
  char* end = nullptr;
  const unsigned long long v = std::strtoull(text, &end, 10);
  if (errno != 0 || *end != '\0') return false;
  *seed = v;
  return true;
}

bool Start() {
  const char* mode = std::getenv("QUIESCE_TESTFIXTURE_GATE");
  if (mode == nullptr || *mode == '\0' || std::strcmp(mode, "off") == 0) {
    return true;
  }
  if (std::strcmp(mode, "cycle") != 0) {
    std::fprintf(stderr,
                 "quiesce testfixture: QUIESCE_TESTFIXTURE_GATE='%s': "
                 "expected 'cycle' or 'off'\n",
                 mode);
    return false;
  }
  uint64_t seed = 0;
  if (const char* s = std::getenv("QUIESCE_TESTFIXTURE_GATE_SEED")) {
    if (!ParseSeed(s, &seed)) {
      std::fprintf(stderr,
                   "quiesce testfixture: QUIESCE_TESTFIXTURE_GATE_SEED='%s': "
                   "expected a decimal number\n",
                   s);
      return false;
    }
  } else {
    seed = (uint64_t{std::random_device{}()} << 32) ^
           static_cast<uint64_t>(Clock::now().time_since_epoch().count()) ^
           getpid();
  }
  const char* report = std::getenv("QUIESCE_TESTFIXTURE_GATE_REPORT");
  if (Context::Get() == nullptr) {
    std::fprintf(stderr, "quiesce testfixture: gate mode without the shim\n");
    return false;
  }
  // Children (crash tests start hundreds) do without the first steps' extra
  // kicks, which are there for the many small test files. The variable is
  // set before the thread starts, while testfixture has no other thread.
  const bool child = std::getenv(kChildVariable) != nullptr;
  if (!child) setenv(kChildVariable, "1", 1);
  auto* cycler = new Cycler(seed, report != nullptr ? report : "", child);
  cycler->WriteReport("quiesce-gate-start pid=" + std::to_string(getpid()) +
                      " seed=" + std::to_string(seed) + "\n");
  try {
    cycler->Start();
  } catch (const std::system_error& e) {
    std::fprintf(stderr, "quiesce testfixture: gate thread: %s\n", e.what());
    return false;
  }
  g_cycler.store(cycler);
  std::atexit(StopAtExit);
  return true;
}

}  // namespace

bool StartGateModeFromEnv() {
  static bool ok = true;
  std::call_once(g_decided, [] { ok = Start(); });
  return ok;
}

void BeforeStep(sqlite3_stmt* stmt) {
  if (Cycler* c = g_cycler.load(std::memory_order_acquire)) c->BeforeStep(stmt);
}

}  // namespace quiesce_testfixture
