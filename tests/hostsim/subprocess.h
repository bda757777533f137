// Child processes for the host simulator tests: the simulator itself in
// the background, and quiescectl commands whose output the test reads.
// Every wait is bounded; a child still running at its bound is killed.
#ifndef QUIESCE_TESTS_HOSTSIM_SUBPROCESS_H_
#define QUIESCE_TESTS_HOSTSIM_SUBPROCESS_H_

#include <sys/types.h>

#include <chrono>
#include <string>
#include <vector>

namespace quiesce::testing {

// The exit status of a child, or kKilled when it had to be killed at its
// time limit (or died of a signal).
inline constexpr int kKilled = -1;

struct Finished {
  int exit_code = kKilled;
  std::string out;  // its standard output
};

// Runs argv to completion (at most `limit`), capturing standard output;
// standard error goes to the test's.
Finished RunProgram(const std::vector<std::string>& argv,
             std::chrono::milliseconds limit);

// A child running in the background with its standard output in a file.
class Background {
 public:
  Background(const std::vector<std::string>& argv, const std::string& out);
  // Kills the child if it still runs.
  ~Background();
  Background(const Background&) = delete;
  Background& operator=(const Background&) = delete;

  bool started() const { return pid_ > 0; }
  // Waits (at most `limit`) for the child to end; its exit status, or
  // kKilled.
  int Wait(std::chrono::milliseconds limit);
  // kill -9, and reaps it.
  void Kill();
  pid_t pid() const { return pid_; }

 private:
  pid_t pid_ = -1;
};

// The path of a built program from the environment variable `name`
// (set by tests/hostsim/meson.build); "" when unset.
std::string ProgramFromEnv(const char* name);

}  // namespace quiesce::testing

#endif  // QUIESCE_TESTS_HOSTSIM_SUBPROCESS_H_
