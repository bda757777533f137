// What the soak samples of the host process, and the judgement that
// nothing grows without bound: the last quarter of the run against the
// first.
#ifndef QUIESCE_TESTS_SOAK_PROBE_H_
#define QUIESCE_TESTS_SOAK_PROBE_H_

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

namespace quiesce::soak {

struct Sample {
  double seconds = 0;       // since the workload started
  uint64_t rss_kib = 0;     // VmRSS
  uint64_t fds = 0;         // entries of /proc/<pid>/fd
  uint64_t threads = 0;     // Threads
  uint64_t wal_bytes = 0;   // the WAL database's -wal file
  // The client side's running totals, for the record.
  uint64_t snapshots = 0, injections = 0, holds = 0, client_errors = 0;
};

// Reads /proc/<pid>/status and /proc/<pid>/fd, and the WAL's size.
// False when the process is gone.
bool Probe(pid_t pid, const std::string& wal_path, Sample* out);

// The most RSS the host may gain per client operation over the run (the
// slope, see Judge): half the ~100 B/op leak the soak must catch.
inline constexpr double kMaxRssBytesPerOp = 50;
// Operations (over the last three quarters) below which the slope is
// reported, not judged.
inline constexpr uint64_t kMinOpsToJudgePerOp = 20000;

struct Judgement {
  bool bounded = true;
  std::vector<std::string> lines;  // one per metric: first vs last quarter
};

// Compares the largest value of each metric in the last quarter of the
// samples with the largest in the first quarter, within an allowance for
// noise (see probe.cc), and bounds RSS growth per client operation (the
// least-squares slope over the last three quarters). Needs at least 8
// samples.
Judgement Judge(const std::vector<Sample>& samples);

}  // namespace quiesce::soak

#endif  // QUIESCE_TESTS_SOAK_PROBE_H_
