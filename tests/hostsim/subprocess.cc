#include "subprocess.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <thread>

namespace quiesce::testing {

namespace {

using Clock = std::chrono::steady_clock;

// fork + exec with standard output on `out_fd`; -1 when fork fails.
pid_t Spawn(const std::vector<std::string>& argv, int out_fd) {
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  const pid_t pid = fork();
  if (pid == 0) {
    dup2(out_fd, STDOUT_FILENO);
    execv(args[0], args.data());
    _exit(127);
  }
  return pid;
}

// Polls for the child's end until `deadline`, then kills it.
int Reap(pid_t pid, Clock::time_point deadline) {
  int status = 0;
  for (;;) {
    const pid_t done = waitpid(pid, &status, WNOHANG);
    if (done == pid) break;
    if (done < 0 && errno != EINTR) return kKilled;
    if (Clock::now() >= deadline) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      return kKilled;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : kKilled;
}

}  // namespace

Finished RunProgram(const std::vector<std::string>& argv,
             std::chrono::milliseconds limit) {
  const auto deadline = Clock::now() + limit;
  Finished finished;
  int pipe_fds[2];
  if (pipe2(pipe_fds, O_CLOEXEC) != 0) return finished;
  const pid_t pid = Spawn(argv, pipe_fds[1]);
  close(pipe_fds[1]);
  if (pid < 0) {
    close(pipe_fds[0]);
    return finished;
  }
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - Clock::now());
    if (left.count() <= 0) break;
    pollfd p{pipe_fds[0], POLLIN, 0};
    const int ready = poll(&p, 1, static_cast<int>(left.count()));
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) break;
    char buffer[4096];
    const ssize_t n = read(pipe_fds[0], buffer, sizeof(buffer));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    finished.out.append(buffer, static_cast<size_t>(n));
  }
  close(pipe_fds[0]);
  finished.exit_code = Reap(pid, deadline);
  return finished;
}

Background::Background(const std::vector<std::string>& argv,
                       const std::string& out) {
  const int fd = open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
                      0600);
  if (fd < 0) return;
  pid_ = Spawn(argv, fd);
  close(fd);
}

Background::~Background() {
  if (pid_ > 0) Reap(pid_, Clock::now());
}

int Background::Wait(std::chrono::milliseconds limit) {
  if (pid_ <= 0) return kKilled;
  const int code = Reap(pid_, Clock::now() + limit);
  pid_ = -1;
  return code;
}

void Background::Kill() {
  if (pid_ <= 0) return;
  kill(pid_, SIGKILL);
  Reap(pid_, Clock::now());
  pid_ = -1;
}

std::string ProgramFromEnv(const char* name) {
  const char* value = std::getenv(name);
  return value ? value : "";
}

}  // namespace quiesce::testing
