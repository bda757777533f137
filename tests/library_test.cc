// What libquiesce brings into a host: only its entry points, no SQLite of
// its own, no shared library beyond libc and libstdc++, and a function table
// that the SQLite Firefox ships can fill.
#include <dlfcn.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <set>
#include <sstream>
#include <string>

#include "sqlite_api.h"

namespace quiesce::testing {
namespace {

constexpr char kMozSqlite[] = "/usr/lib/firefox-esr/libmozsqlite3.so";

std::string Shell(const std::string& cmd) {
  std::string out;
  FILE* p = popen(cmd.c_str(), "r");
  if (p == nullptr) return out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), p)) > 0) out.append(buf, n);
  EXPECT_EQ(pclose(p), 0) << cmd;
  return out;
}

std::set<std::string> Lines(const std::string& text) {
  std::set<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) lines.insert(line);
  }
  return lines;
}

std::string Library() {
  const char* path = std::getenv("LIBQUIESCE");
  EXPECT_NE(path, nullptr) << "meson sets LIBQUIESCE";
  return path ? path : "";
}

TEST(Library, ExportsOnlyItsEntryPoints) {
  const auto exported = Lines(Shell(
      "nm -D --defined-only '" + Library() +
      "' | awk '$2 ~ /^[TDBVWRG]$/ {print $3}'"));
  EXPECT_EQ(exported, (std::set<std::string>{
                          "quiesce_attach", "quiesce_register",
                          "quiesce_shutdown",
                          "sqlite3_quiesce_init"}));
}

TEST(Library, CallsNoSqliteSymbolDirectly) {
  const auto undefined = Lines(Shell("nm -D --undefined-only '" + Library() +
                                   "' | awk '{print $2}'"));
  for (const std::string& sym : undefined) {
    EXPECT_NE(sym.rfind("sqlite3_", 0), 0u) << sym;
  }
}

TEST(Library, NeedsNothingButLibcAndLibstdcxx) {
  const auto needed = Lines(Shell(
      "readelf -d '" + Library() +
      "' | sed -n 's/.*(NEEDED).*\\[\\(.*\\)\\]/\\1/p'"));
  // ld-linux is the dynamic loader itself (thread_local storage asks it for
  // __tls_get_addr): every process has it loaded already.
  const std::set<std::string> allowed = {
      "libstdc++.so.6", "libgcc_s.so.1", "libc.so.6", "libm.so.6",
      "ld-linux-x86-64.so.2"};
  for (const std::string& lib : needed) {
    EXPECT_TRUE(allowed.count(lib)) << "unexpected DT_NEEDED " << lib;
  }
}

TEST(Library, FirefoxSqliteExportsTheWholeFunctionTable) {
  if (!std::filesystem::exists(kMozSqlite)) {
    GTEST_SKIP() << kMozSqlite << " is missing (Debian package firefox-esr)";
  }
  const auto exported = Lines(Shell(
      std::string("nm -D --defined-only ") + kMozSqlite +
      " | awk '{print $3}' | sed 's/@.*//'"));
  for (const std::string& name : SqliteApiSymbols()) {
    EXPECT_TRUE(exported.count(name))
        << name << " is not exported by Firefox's SQLite";
  }
}

TEST(Library, TableFillsFromFirefoxSqliteAtRunTime) {
  if (!std::filesystem::exists(kMozSqlite)) {
    GTEST_SKIP() << kMozSqlite << " is missing (Debian package firefox-esr)";
  }
  void* handle = dlopen(kMozSqlite, RTLD_NOW | RTLD_LOCAL);
  ASSERT_NE(handle, nullptr) << dlerror();
  const Result<SqliteApi> api = LoadSqliteApi(
      [](void* h, const char* sym) { return dlsym(h, sym); }, handle);
  ASSERT_TRUE(api.ok()) << api.error().message;
  EXPECT_EQ(std::string(api.value().libversion()).substr(0, 2), "3.");
  dlclose(handle);
}

TEST(Library, ATableWithMissingSymbolsNamesThemAll) {
  // A library that lacks two of the functions the shim calls.
  const Result<SqliteApi> api = LoadSqliteApi(
      [](void*, const char* sym) -> void* {
        const std::string name = sym;
        if (name == "sqlite3_vfs_find" || name == "sqlite3_mprintf") {
          return nullptr;
        }
        return dlsym(RTLD_DEFAULT, sym);
      },
      nullptr);
  ASSERT_FALSE(api.ok());
  EXPECT_EQ(api.error().code, ErrorCode::kNotFound);
  EXPECT_NE(api.error().message.find("sqlite3_vfs_find"), std::string::npos)
      << api.error().message;
  EXPECT_NE(api.error().message.find("sqlite3_mprintf"), std::string::npos)
      << api.error().message;
}

}  // namespace
}  // namespace quiesce::testing
