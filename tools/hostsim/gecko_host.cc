#include "gecko_host.h"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <exception>
#include <fstream>
#include <latch>
#include <memory>
#include <random>
#include <thread>
#include <unordered_map>
#include <vector>

#include "gecko_names.h"
#include "gecko_origin.h"
#include "nlohmann/json.hpp"

namespace quiesce::hostsim {

namespace {

using Clock = std::chrono::steady_clock;

// Only the first few errors of an origin are printed; all are counted.
constexpr int64_t kErrorsPrinted = 5;

struct OriginRun {
  std::string origin;
  std::string db_path;  // empty when the origin did not open
  std::vector<CacheOp> ops;
  int64_t errors = 0;
  int64_t live_entries = 0;
};

// URL k of an origin; every third one has a query, so that both URL hashes
// vary.
std::string UrlFor(const std::string& origin, uint64_t k) {
  std::string url = origin + "/item/" + std::to_string(k);
  if (k % 3 == 2) url += "?v=" + std::to_string(k);
  return url;
}

// Random, so incompressible, like the media and scripts most caches hold.
std::string RandomBody(std::mt19937_64& rng, size_t size) {
  std::string body(size, '\0');
  for (size_t i = 0; i < size; i += 8) {
    const uint64_t word = rng();
    for (size_t b = 0; b < 8 && i + b < size; ++b) {
      body[i + b] = static_cast<char>(word >> (8 * b));
    }
  }
  return body;
}

// The URLs an origin's cache holds, for picking one to delete.
class LiveUrls {
 public:
  void Add(const std::string& url) {
    if (index_.emplace(url, urls_.size()).second) urls_.push_back(url);
  }
  void Remove(const std::string& url) {
    auto it = index_.find(url);
    if (it == index_.end()) return;
    const size_t at = it->second;
    index_.erase(it);
    if (at + 1 != urls_.size()) {
      urls_[at] = std::move(urls_.back());
      index_[urls_[at]] = at;
    }
    urls_.pop_back();
  }
  const std::string& Pick(std::mt19937_64& rng) const {
    return urls_[rng() % urls_.size()];
  }
  bool empty() const { return urls_.empty(); }
  size_t size() const { return urls_.size(); }

 private:
  std::vector<std::string> urls_;
  std::unordered_map<std::string, size_t> index_;  // url -> its slot
};

void CountError(OriginRun* run, const std::string& what) {
  if (run->errors++ < kErrorsPrinted) {
    std::fprintf(stderr, "hostsim: %s: %s\n", run->origin.c_str(),
                 what.c_str());
  }
}

// The thread of one origin: open, wait for the others, run the load until
// the deadline, close.
void RunOrigin(const std::filesystem::path& profile, int index,
               const GeckoLoad& load, std::latch* opened, OriginRun* run) {
  std::unique_ptr<GeckoOrigin> origin;
  std::string error;
  try {  // every thread must arrive below, or the others wait for ever
    origin = GeckoOrigin::Open(profile, run->origin, kLoadCacheName, &error);
  } catch (const std::exception& e) {
    error = std::string("exception: ") + e.what();
  }
  if (origin) {
    run->db_path = origin->db_path().string();
  } else {
    CountError(run, error);
  }
  opened->arrive_and_wait();
  if (!origin) return;

  std::mt19937_64 rng(static_cast<uint64_t>(index) + 1);
  LiveUrls live;
  uint64_t next_unique = 0;
  auto record = [&](CacheOp op) {
    op.end_unix_us = std::chrono::duration_cast<std::chrono::microseconds>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count();
    run->ops.push_back(std::move(op));
  };
  auto stopped = [&] { return load.stop != nullptr && load.stop->load(); };
  for (int i = 0; i < load.fill && !stopped(); ++i) {
    CacheOp op;
    const std::string url = UrlFor(
        run->origin, load.urls > 0 ? static_cast<uint64_t>(i) : next_unique++);
    if (origin->Put(url, RandomBody(rng, load.body_size), &op, &error)) {
      live.Add(url);
      record(std::move(op));
    } else {
      CountError(run, error);
    }
  }
  const auto period =
      load.rate > 0 ? std::chrono::microseconds(1000000 / load.rate)
                    : std::chrono::microseconds(0);
  const auto deadline = Clock::now() + std::chrono::seconds(load.seconds);
  auto next = Clock::now();
  for (uint64_t n = 0; Clock::now() < deadline && !stopped(); ++n) {
    CacheOp op;
    const bool deleting = load.delete_every > 0 &&
                          n % load.delete_every ==
                              static_cast<uint64_t>(load.delete_every - 1) &&
                          !live.empty();
    if (deleting) {
      const std::string url = live.Pick(rng);
      if (origin->Delete(url, &op, &error)) {
        live.Remove(url);
        record(std::move(op));
      } else {
        CountError(run, error);
      }
    } else {
      const uint64_t k =
          load.urls > 0 ? rng() % static_cast<uint64_t>(load.urls)
                        : next_unique++;
      const std::string url = UrlFor(run->origin, k);
      if (origin->Put(url, RandomBody(rng, load.body_size), &op, &error)) {
        live.Add(url);
        record(std::move(op));
      } else {
        CountError(run, error);
      }
    }
    if (load.rate > 0) {
      next += period;
      std::this_thread::sleep_until(next);
    }
  }
  run->live_entries = static_cast<int64_t>(live.size());
  if (!origin->Close(&error)) CountError(run, error);
}

nlohmann::json OpJson(const OriginRun& run, const CacheOp& op) {
  nlohmann::json line = {
      {"origin", run.origin},
      {"db", run.db_path},
      {"cache", kLoadCacheName},
      {"op", op.kind == CacheOp::Kind::kPut ? "put" : "delete"},
      {"url", op.url},
      {"removed", op.entries_removed},
      {"transaction_us", op.transaction_us},
      {"end_unix_us", op.end_unix_us},
  };
  if (op.kind == CacheOp::Kind::kPut) {
    line["body_id"] = op.body_id;
    line["body_path"] = bundle::MorguePathOfBodyId(op.body_id).value_or("");
    line["body_disk_size"] = op.body_disk_size;
    line["body_sha256"] = op.body_sha256;
  }
  return line;
}

bool WriteLog(const std::string& path, const std::vector<OriginRun>& runs) {
  std::ofstream log(path, std::ios::trunc);
  for (const OriginRun& run : runs) {
    for (const CacheOp& op : run.ops) log << OpJson(run, op).dump() << '\n';
  }
  log.flush();
  return static_cast<bool>(log);
}

double Percentile(const std::vector<int64_t>& sorted, double p) {
  if (sorted.empty()) return 0;
  const size_t at = std::min(
      sorted.size() - 1, static_cast<size_t>(p * static_cast<double>(sorted.size())));
  return static_cast<double>(sorted[at]) / 1000.0;
}

void PrintSummary(const std::vector<OriginRun>& runs, FILE* out) {
  std::fprintf(out, "%-26s %7s %7s %6s %7s %8s %8s %8s\n", "origin", "puts",
               "deletes", "errors", "entries", "p50 ms", "p99 ms", "max ms");
  for (const OriginRun& run : runs) {
    int64_t puts = 0, deletes = 0;
    std::vector<int64_t> us;
    for (const CacheOp& op : run.ops) {
      (op.kind == CacheOp::Kind::kPut ? puts : deletes) += 1;
      us.push_back(op.transaction_us);
    }
    std::sort(us.begin(), us.end());
    std::fprintf(out, "%-26s %7lld %7lld %6lld %7lld %8.3f %8.3f %8.3f\n",
                 run.origin.c_str(), static_cast<long long>(puts),
                 static_cast<long long>(deletes),
                 static_cast<long long>(run.errors),
                 static_cast<long long>(run.live_entries),
                 Percentile(us, 0.50), Percentile(us, 0.99),
                 us.empty() ? 0.0 : static_cast<double>(us.back()) / 1000.0);
  }
}

}  // namespace

std::string LoadOrigin(int index) {
  if (index % 2 == 0) return "http://127.0.0.1:" + std::to_string(8000 + index);
  return "https://app" + std::to_string(index) + ".example";
}

int RunGeckoHost(const std::filesystem::path& profile, const GeckoLoad& load,
                 const std::string& log, FILE* out) {
  std::vector<OriginRun> runs(static_cast<size_t>(load.origins));
  for (int i = 0; i < load.origins; ++i) runs[i].origin = LoadOrigin(i);
  std::latch opened(load.origins + 1);
  std::vector<std::thread> threads;
  threads.reserve(runs.size());
  for (int i = 0; i < load.origins; ++i) {
    threads.emplace_back([&, i] {
      try {
        RunOrigin(profile, i, load, &opened, &runs[i]);
      } catch (const std::exception& e) {
        CountError(&runs[i], std::string("exception: ") + e.what());
      }
    });
  }
  opened.arrive_and_wait();
  for (const OriginRun& run : runs) {
    if (!run.db_path.empty()) std::fprintf(out, "hostsim: open %s\n", run.db_path.c_str());
  }
  std::fprintf(out, "hostsim: %d origin(s), %d operations/s each%s, %zu-byte bodies, for %ds\n",
               load.origins, load.rate, load.rate == 0 ? " (unthrottled)" : "",
               load.body_size, load.seconds);
  std::fflush(out);
  for (std::thread& t : threads) t.join();

  int64_t errors = 0;
  for (const OriginRun& run : runs) errors += run.errors;
  if (!log.empty() && !WriteLog(log, runs)) {
    std::fprintf(stderr, "hostsim: cannot write %s\n", log.c_str());
    ++errors;
  }
  PrintSummary(runs, out);
  std::fprintf(out, "hostsim: %lld host error(s)\n",
               static_cast<long long>(errors));
  return errors == 0 ? 0 : 1;
}

}  // namespace quiesce::hostsim
