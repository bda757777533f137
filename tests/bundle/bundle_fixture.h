// Helpers for the bundle tests: copies of the Firefox fixtures (never the
// fixtures themselves: opening runs WAL recovery, which writes) and small
// file utilities.
#ifndef QUIESCE_TESTS_BUNDLE_BUNDLE_FIXTURE_H_
#define QUIESCE_TESTS_BUNDLE_BUNDLE_FIXTURE_H_

#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include "cache_bundle.h"
#include "support.h"

namespace quiesce::testing {

inline constexpr char kOrigin[] = "http://127.0.0.1:8765";
inline constexpr char kCacheName[] = "probe-v1";
inline constexpr int kFixtureEntries = 37;

// The fixture's cache directory ("clean" or "killed"), from
// $QUIESCE_FIXTURES; nullopt when it is not there.
std::optional<std::filesystem::path> FixtureCacheDir(const std::string& kind);

// A writable copy of a fixture's cache directory under `parent`/`name`.
std::filesystem::path CopyFixture(const std::filesystem::path& fixture,
                                  const std::filesystem::path& parent,
                                  const std::string& name);

std::string ReadFile(const std::filesystem::path& path);
void WriteFile(const std::filesystem::path& path, const std::string& bytes);

// The URLs the fixture's page left: /item/i for i in 0..49 but every 4th.
std::vector<std::string> FixtureUrls();

// Skips the current test (with the reason) when the fixtures are missing.
#define QUIESCE_REQUIRE_FIXTURE(var, kind)                                \
  std::optional<std::filesystem::path> var = FixtureCacheDir(kind);       \
  if (!var) GTEST_SKIP() << "Firefox fixtures not found: set "            \
                            "QUIESCE_FIXTURES to shared/fixtures/"        \
                            "firefox-esr-153"

}  // namespace quiesce::testing

#endif  // QUIESCE_TESTS_BUNDLE_BUNDLE_FIXTURE_H_
