// Work that takes long (a snapshot, a drain, an injection, a lease's
// timer) runs on a thread of its own, never on the server's poll thread.
// What it has to say (its reply, progress and events, each one encoded
// line) reaches its session through a mailbox that the server thread
// empties when woken.
//
// Thread safety: Start, Take and CancelSession are called from the server
// thread; Post and Wait from the job's own. Lifetime: the destructor (or
// Shutdown) cancels every job and joins its thread.
#ifndef QUIESCE_CONTROL_JOBS_H_
#define QUIESCE_CONTROL_JOBS_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "mutex.h"

namespace quiesce::control {

class Job {
 public:
  using Clock = std::chrono::steady_clock;
  explicit Job(uint64_t session, std::function<void()> wake)
      : session_(session), wake_(std::move(wake)) {}

  // Queues one line for the session; `last` marks the job's final word.
  void Post(std::string line, bool last = false) QUIESCE_EXCLUDES(mu_);
  // Waits until the deadline or a cancel; true when cancelled.
  bool Wait(Clock::time_point deadline) QUIESCE_EXCLUDES(mu_);
  bool cancelled() QUIESCE_EXCLUDES(mu_);
  void Cancel() QUIESCE_EXCLUDES(mu_);
  // Lets long work poll for cancellation without the mutex.
  const std::atomic<bool>* cancel_flag() const { return &cancel_flag_; }

 private:
  friend class Jobs;
  struct Mail {
    std::string line;
    bool last;
  };

  const uint64_t session_;
  const std::function<void()> wake_;
  std::atomic<bool> cancel_flag_{false};
  std::atomic<bool> finished_{false};
  Mutex mu_;
  CondVar cv_;
  std::vector<Mail> mail_ QUIESCE_GUARDED_BY(mu_);
};

class Jobs {
 public:
  struct Delivery {
    uint64_t session;
    std::string line;
    bool last;  // the job's final word: its session may idle again
  };

  Jobs(std::function<void()> wake, size_t max_running)
      : wake_(std::move(wake)), max_running_(max_running) {}
  ~Jobs() { Shutdown(); }
  Jobs(const Jobs&) = delete;
  Jobs& operator=(const Jobs&) = delete;

  // Runs `work` on a new thread for a session. Null when max_running jobs
  // are running already (the request gets `busy`). The work must post a
  // last line (its reply, or a final event) before it returns.
  std::shared_ptr<Job> Start(uint64_t session,
                             std::function<void(Job&)> work);
  // Lines posted since the last call, in order; joins finished threads.
  std::vector<Delivery> Take();
  // A session ended: its jobs stop as soon as they can.
  void CancelSession(uint64_t session);
  void Shutdown();

 private:
  struct Running {
    std::shared_ptr<Job> job;
    std::thread thread;
  };
  const std::function<void()> wake_;
  const size_t max_running_;
  std::list<Running> running_;  // the server thread's own
};

}  // namespace quiesce::control

#endif  // QUIESCE_CONTROL_JOBS_H_
