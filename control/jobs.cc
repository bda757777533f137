#include "jobs.h"

#include "codec.h"

namespace quiesce::control {

void Job::Post(std::string line, bool last) {
  {
    MutexLock lock(&mu_);
    mail_.push_back({std::move(line), last});
  }
  wake_();
}

bool Job::Wait(Clock::time_point deadline) {
  MutexLock lock(&mu_);
  while (!cancel_flag_.load() && Clock::now() < deadline) {
    cv_.WaitUntil(&mu_, deadline);
  }
  return cancel_flag_.load();
}

bool Job::cancelled() { return cancel_flag_.load(); }

void Job::Cancel() {
  MutexLock lock(&mu_);
  cancel_flag_.store(true);
  cv_.SignalAll();
}

std::shared_ptr<Job> Jobs::Start(uint64_t session,
                                 std::function<void(Job&)> work) {
  if (running_.size() >= max_running_) return nullptr;
  auto job = std::make_shared<Job>(session, wake_);
  std::thread thread([job, work = std::move(work)] {
    try {
      work(*job);
    } catch (...) {
      // Nothing may escape a thread in the host: say so rather than leave
      // the client waiting.
      job->Post(EncodeError(std::nullopt, ErrorCode::kInternal,
                            "the operation failed unexpectedly"),
                /*last=*/true);
    }
    job->finished_.store(true);
    job->wake_();
  });
  running_.push_back({job, std::move(thread)});
  return job;
}

std::vector<Jobs::Delivery> Jobs::Take() {
  std::vector<Delivery> out;
  for (auto it = running_.begin(); it != running_.end();) {
    Job& job = *it->job;
    const bool finished = job.finished_.load();
    {
      MutexLock lock(&job.mu_);
      for (Job::Mail& m : job.mail_) {
        out.push_back({job.session_, std::move(m.line), m.last});
      }
      job.mail_.clear();
    }
    if (finished) {
      it->thread.join();
      it = running_.erase(it);
    } else {
      ++it;
    }
  }
  return out;
}

void Jobs::CancelSession(uint64_t session) {
  for (Running& r : running_) {
    if (r.job->session_ == session) r.job->Cancel();
  }
}

void Jobs::Shutdown() {
  for (Running& r : running_) r.job->Cancel();
  for (Running& r : running_) r.thread.join();
  running_.clear();
}

}  // namespace quiesce::control
