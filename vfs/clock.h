// The one clock host code measures waits and deadlines with.
#ifndef QUIESCE_VFS_CLOCK_H_
#define QUIESCE_VFS_CLOCK_H_

#include <chrono>
#include <cstdint>

namespace quiesce {

using Clock = std::chrono::steady_clock;

inline uint64_t Micros(Clock::duration d) {
  return static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::microseconds>(d).count());
}

}  // namespace quiesce

#endif  // QUIESCE_VFS_CLOCK_H_
