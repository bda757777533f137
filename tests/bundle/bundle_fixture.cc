#include "bundle_fixture.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

namespace quiesce::testing {

std::optional<std::filesystem::path> FixtureCacheDir(const std::string& kind) {
  const char* root = std::getenv("QUIESCE_FIXTURES");
  if (root == nullptr) return std::nullopt;
  std::filesystem::path dir =
      std::filesystem::path(root) / kind / "http+++127.0.0.1+8765" / "cache";
  if (!std::filesystem::exists(dir / "caches.sqlite")) return std::nullopt;
  return dir;
}

std::filesystem::path CopyFixture(const std::filesystem::path& fixture,
                                  const std::filesystem::path& parent,
                                  const std::string& name) {
  namespace fs = std::filesystem;
  fs::path dest = parent / name;
  fs::copy(fixture, dest, fs::copy_options::recursive);
  // The fixtures are read-only; their copies must not be.
  fs::permissions(dest, fs::perms::owner_all, fs::perm_options::add);
  for (const fs::directory_entry& e : fs::recursive_directory_iterator(dest)) {
    fs::permissions(e.path(),
                    e.is_directory() ? fs::perms::owner_all
                                     : fs::perms::owner_read |
                                           fs::perms::owner_write,
                    fs::perm_options::add);
  }
  return dest;
}

std::string ReadFile(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in.good()) << "cannot read " << path;
  std::ostringstream bytes;
  bytes << in.rdbuf();
  return bytes.str();
}

void WriteFile(const std::filesystem::path& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << bytes;
  ASSERT_TRUE(out.good()) << "cannot write " << path;
}

std::vector<std::string> FixtureUrls() {
  std::vector<std::string> urls;
  for (int i = 0; i < 50; ++i) {
    if (i % 4 != 0) {
      urls.push_back(std::string(kOrigin) + "/item/" + std::to_string(i));
    }
  }
  return urls;
}

}  // namespace quiesce::testing
