// The soak's judgement catches a leak of ~100 B per operation and passes a
// flat run with heap noise, over the sample counts a 10-minute run makes.
#include "probe.h"

#include <gtest/gtest.h>

#include <random>

namespace quiesce::soak {
namespace {

// 120 samples (10 minutes every 5 s) of a host doing `ops_per_sample`
// operations per sample, leaking `leak` bytes each, with up to `noise_kib`
// of heap noise.
std::vector<Sample> Synthetic(double leak, uint64_t ops_per_sample,
                        uint64_t noise_kib) {
  std::mt19937 rng(42);
  std::uniform_int_distribution<uint64_t> noise(0, noise_kib);
  std::vector<Sample> samples;
  uint64_t ops = 0;
  for (int i = 0; i < 120; ++i) {
    Sample s;
    s.seconds = i * 5.0;
    ops += ops_per_sample;
    s.injections = ops;
    s.rss_kib = 20000 + static_cast<uint64_t>(leak * ops / 1024) + noise(rng);
    s.fds = 20;
    s.threads = 4;
    s.wal_bytes = 1 << 20;
    samples.push_back(s);
  }
  return samples;
}

TEST(SoakJudge, CatchesALeakOfAHundredBytesPerOperation) {
  // The soak's clients: ~50 injections, 5 snapshots, 0.5 holds a second.
  const Judgement j = Judge(Synthetic(100, 280, 2048));
  EXPECT_FALSE(j.bounded);
  for (const auto& line : j.lines) std::printf("%s\n", line.c_str());
}

TEST(SoakJudge, PassesAFlatRunWithHeapNoise) {
  const Judgement j = Judge(Synthetic(0, 280, 2048));
  EXPECT_TRUE(j.bounded);
  for (const auto& line : j.lines) std::printf("%s\n", line.c_str());
}

}  // namespace
}  // namespace quiesce::soak
