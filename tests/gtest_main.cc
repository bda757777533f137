// The tests' main: GoogleTest, with skips that meson can count. A binary
// in which a test was skipped (GTEST_SKIP: a thing the test needs is
// absent here) and none failed exits 77, which meson reports as SKIP
// rather than OK, and it lists every skipped test with its reason on
// stderr. Failures exit 1 as usual.
#include <gtest/gtest.h>

#include <cstdio>
#include <string>

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  const int rc = RUN_ALL_TESTS();
  if (rc != 0) return rc;
  const ::testing::UnitTest& unit = *::testing::UnitTest::GetInstance();
  int skipped = 0;
  for (int i = 0; i < unit.total_test_suite_count(); ++i) {
    const ::testing::TestSuite& suite = *unit.GetTestSuite(i);
    for (int j = 0; j < suite.total_test_count(); ++j) {
      const ::testing::TestInfo& test = *suite.GetTestInfo(j);
      const ::testing::TestResult& result = *test.result();
      if (!test.should_run() || !result.Skipped()) continue;
      ++skipped;
      std::string why;
      for (int k = 0; k < result.total_part_count(); ++k) {
        const auto& part = result.GetTestPartResult(k);
        if (part.skipped() && part.message() != nullptr) why = part.message();
      }
      std::fprintf(stderr, "SKIPPED %s.%s: %s\n", suite.name(), test.name(),
                   why.empty() ? "(no reason given)" : why.c_str());
    }
  }
  if (skipped > 0) {
    std::fprintf(stderr,
                 "%d of %d tests skipped: exit 77, so that meson counts this "
                 "binary as skipped, not passed\n",
                 skipped, unit.test_to_run_count());
    return 77;
  }
  return 0;
}
