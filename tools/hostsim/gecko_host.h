// The Gecko-like host: several origins, each with its Cache API storage
// and its own thread (Gecko's DOMCacheThread), under a configurable write
// load of puts and deletes. Counts every host error: the cache connections
// have no busy handler, as Gecko's have none, so any lock conflict a
// client caused would show here.
#ifndef QUIESCE_TOOLS_HOSTSIM_GECKO_HOST_H_
#define QUIESCE_TOOLS_HOSTSIM_GECKO_HOST_H_

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <string>

namespace quiesce::hostsim {

struct GeckoLoad {
  int origins = 1;
  // Operations (puts and deletes) per second per origin; 0: back to back.
  int rate = 20;
  size_t body_size = 4096;  // bytes of response body per put, before framing
  // Every Nth operation deletes a cached URL instead of putting; 0: never.
  int delete_every = 5;
  // Distinct URLs per origin, so that puts replace entries; 0: every put
  // caches a new URL (nothing is ever replaced).
  int urls = 100;
  int seconds = 2;
  // Puts of this many distinct URLs first, back to back, before the timed
  // load (a cache of a known size for benchmarks).
  int fill = 0;
  // When set (hostsim's SIGINT and SIGTERM), the load ends early and the
  // run finishes as at its end: log, summary, exit code.
  const std::atomic<bool>* stop = nullptr;
};

// Origin i of the load: http://127.0.0.1:<8000+i> for even i, https://
// app<i>.example (with security info) for odd i; cache "hostsim-v1".
std::string LoadOrigin(int index);
inline constexpr char kLoadCacheName[] = "hostsim-v1";

// Opens every origin under `profile`, prints each database's path on `out`
// once all are open, runs the load for load.seconds, closes them, writes
// one JSON line per committed operation to `log` (if not empty), prints a
// summary (operations, errors, live entries, transaction latency) and
// returns the exit code: 0 when no host operation failed, 1 otherwise.
int RunGeckoHost(const std::filesystem::path& profile, const GeckoLoad& load,
                 const std::string& log, FILE* out);

}  // namespace quiesce::hostsim

#endif  // QUIESCE_TOOLS_HOSTSIM_GECKO_HOST_H_
