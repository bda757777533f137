#include "probe.h"

#include <dirent.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <functional>
#include <sstream>

namespace quiesce::soak {
namespace {

uint64_t StatusField(const std::string& status, const std::string& name) {
  const size_t at = status.find("\n" + name + ":");
  if (at == std::string::npos) return 0;
  return std::strtoull(status.c_str() + at + name.size() + 2, nullptr, 10);
}

uint64_t CountFds(pid_t pid) {
  const std::string path = "/proc/" + std::to_string(pid) + "/fd";
  DIR* dir = opendir(path.c_str());
  if (dir == nullptr) return 0;
  uint64_t n = 0;
  while (const dirent* e = readdir(dir)) {
    if (e->d_name[0] != '.') ++n;
  }
  closedir(dir);
  return n;
}

uint64_t MaxOf(const std::vector<Sample>& s, size_t from, size_t to,
               const std::function<uint64_t(const Sample&)>& get) {
  uint64_t m = 0;
  for (size_t i = from; i < to; ++i) m = std::max(m, get(s[i]));
  return m;
}

}  // namespace

bool Probe(pid_t pid, const std::string& wal_path, Sample* out) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  if (!in) return false;
  std::stringstream text;
  text << "\n" << in.rdbuf();
  const std::string status = text.str();
  out->rss_kib = StatusField(status, "VmRSS");
  out->threads = StatusField(status, "Threads");
  out->fds = CountFds(pid);
  struct stat st;
  out->wal_bytes = stat(wal_path.c_str(), &st) == 0
                       ? static_cast<uint64_t>(st.st_size)
                       : 0;
  return out->threads > 0;
}

Judgement Judge(const std::vector<Sample>& samples) {
  Judgement j;
  const size_t n = samples.size();
  if (n < 8) {
    j.bounded = false;
    j.lines.push_back("too few samples (" + std::to_string(n) + ") to judge");
    return j;
  }
  const size_t quarter = n / 4;
  struct Metric {
    const char* name;
    std::function<uint64_t(const Sample&)> get;
    // The last quarter's largest value may exceed the first quarter's by
    // this much: heaps settle and fds and threads come and go with the
    // clients' requests, but a leak keeps climbing past any fixed margin.
    std::function<uint64_t(uint64_t first)> allowance;
  };
  const Metric metrics[] = {
      {"RSS (KiB)", [](const Sample& s) { return s.rss_kib; },
       [](uint64_t first) { return first / 20 + 2048; }},
      {"open fds", [](const Sample& s) { return s.fds; },
       [](uint64_t) { return uint64_t{4}; }},
      {"threads", [](const Sample& s) { return s.threads; },
       [](uint64_t) { return uint64_t{2}; }},
      {"WAL bytes", [](const Sample& s) { return s.wal_bytes; },
       [](uint64_t first) { return std::max<uint64_t>(first, 4u << 20); }},
  };
  // A leak per operation: the slope of RSS over the operations done, by
  // least squares over the last three quarters (the first is warm-up). A
  // leak of 100 B per operation shows as ~100 B/op whatever the run's
  // length; heap noise of a few MiB spread over tens of thousands of
  // operations stays far below the bound.
  {
    double n_used = 0, sx = 0, sy = 0, sxx = 0, sxy = 0;
    for (size_t i = quarter; i < n; ++i) {
      const Sample& s = samples[i];
      const double x = static_cast<double>(s.snapshots + s.injections +
                                           s.holds);
      const double y = static_cast<double>(s.rss_kib) * 1024.0;
      n_used += 1;
      sx += x;
      sy += y;
      sxx += x * x;
      sxy += x * y;
    }
    const double denom = n_used * sxx - sx * sx;
    const double per_op = denom > 0 ? (n_used * sxy - sx * sy) / denom : 0;
    const auto ops = [](const Sample& s) {
      return s.snapshots + s.injections + s.holds;
    };
    // Too few operations and heap noise dominates the slope: say so
    // rather than judge (a 10-minute run makes ~30,000).
    const bool enough = ops(samples[n - 1]) - ops(samples[quarter]) >=
                        kMinOpsToJudgePerOp;
    const bool ok = !enough || per_op <= kMaxRssBytesPerOp;
    j.bounded = j.bounded && ok;
    char line[200];
    std::snprintf(line, sizeof(line),
                  "| RSS growth per operation (B, last 3/4) | | %.1f | %.0f | "
                  "%s |",
                  per_op, kMaxRssBytesPerOp,
                  !enough ? "too few operations to judge"
                  : ok    ? "bounded"
                          : "GROWS");
    j.lines.push_back(line);
  }
  for (const Metric& m : metrics) {
    const uint64_t first = MaxOf(samples, 0, quarter, m.get);
    const uint64_t last = MaxOf(samples, n - quarter, n, m.get);
    const uint64_t limit = first + m.allowance(first);
    const bool ok = last <= limit;
    j.bounded = j.bounded && ok;
    char line[200];
    std::snprintf(line, sizeof(line),
                  "| %s | %llu | %llu | %llu | %s |", m.name,
                  static_cast<unsigned long long>(first),
                  static_cast<unsigned long long>(last),
                  static_cast<unsigned long long>(limit),
                  ok ? "bounded" : "GROWS");
    j.lines.push_back(line);
  }
  return j;
}

}  // namespace quiesce::soak
