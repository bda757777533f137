// A mutex and condition variable for host code, annotated for clang's
// -Wthread-safety. Built on std::mutex (pthreads), so ThreadSanitizer sees
// every lock; a prebuilt absl::Mutex would be invisible to it.
#ifndef QUIESCE_VFS_MUTEX_H_
#define QUIESCE_VFS_MUTEX_H_

#include <chrono>
#include <condition_variable>
#include <mutex>

#if defined(__clang__)
#define QUIESCE_TSA(x) __attribute__((x))
#else
#define QUIESCE_TSA(x)
#endif

#define QUIESCE_CAPABILITY(x) QUIESCE_TSA(capability(x))
#define QUIESCE_SCOPED_CAPABILITY QUIESCE_TSA(scoped_lockable)
#define QUIESCE_GUARDED_BY(x) QUIESCE_TSA(guarded_by(x))
#define QUIESCE_PT_GUARDED_BY(x) QUIESCE_TSA(pt_guarded_by(x))
#define QUIESCE_REQUIRES(...) QUIESCE_TSA(requires_capability(__VA_ARGS__))
#define QUIESCE_EXCLUDES(...) QUIESCE_TSA(locks_excluded(__VA_ARGS__))
#define QUIESCE_ACQUIRE(...) QUIESCE_TSA(acquire_capability(__VA_ARGS__))
#define QUIESCE_RELEASE(...) QUIESCE_TSA(release_capability(__VA_ARGS__))
#define QUIESCE_ASSERT_CAPABILITY(x) QUIESCE_TSA(assert_capability(x))
#define QUIESCE_NO_TSA QUIESCE_TSA(no_thread_safety_analysis)

namespace quiesce {

class QUIESCE_CAPABILITY("mutex") Mutex {
 public:
  Mutex() = default;
  Mutex(const Mutex&) = delete;
  Mutex& operator=(const Mutex&) = delete;

  void Lock() QUIESCE_ACQUIRE() { mu_.lock(); }
  void Unlock() QUIESCE_RELEASE() { mu_.unlock(); }

 private:
  friend class CondVar;
  std::mutex mu_;
};

class QUIESCE_SCOPED_CAPABILITY MutexLock {
 public:
  explicit MutexLock(Mutex* mu) QUIESCE_ACQUIRE(mu) : mu_(mu) { mu_->Lock(); }
  ~MutexLock() QUIESCE_RELEASE() { mu_->Unlock(); }
  MutexLock(const MutexLock&) = delete;
  MutexLock& operator=(const MutexLock&) = delete;

 private:
  Mutex* const mu_;
};

// Every wait has a deadline: host code never waits unbounded.
class CondVar {
 public:
  using Clock = std::chrono::steady_clock;

  // Waits until notified or the deadline passes; returns false on timeout.
  // Spurious wake-ups return true: callers loop on their condition.
  bool WaitUntil(Mutex* mu, Clock::time_point deadline) QUIESCE_REQUIRES(mu) {
    std::unique_lock<std::mutex> lock(mu->mu_, std::adopt_lock);
    const bool notified = cv_.wait_until(lock, deadline) ==
                          std::cv_status::no_timeout;
    lock.release();
    return notified;
  }
  void SignalAll() { cv_.notify_all(); }

 private:
  std::condition_variable cv_;
};

}  // namespace quiesce

#endif  // QUIESCE_VFS_MUTEX_H_
