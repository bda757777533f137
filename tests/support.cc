#include "support.h"

#include <dlfcn.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <mutex>

#include "context.h"
#include "quiesce/quiesce.h"

namespace quiesce::testing {

// Under QUIESCE_EXPECT_SQLITE=<path> the tests must be running on that
// library (Firefox's libmozsqlite3, preloaded), the shim's table included.
void CheckSqliteUnderTest() {
  const char* want = std::getenv("QUIESCE_EXPECT_SQLITE");
  if (want == nullptr) return;
  Dl_info info{};
  ASSERT_NE(dladdr(reinterpret_cast<void*>(Context::Get()->api().vfs_find),
                   &info), 0);
  ASSERT_NE(info.dli_fname, nullptr);
  ASSERT_EQ(std::string(info.dli_fname), want)
      << "the shim's function table is bound to another SQLite";
  ASSERT_NE(dladdr(reinterpret_cast<void*>(&sqlite3_open_v2), &info), 0);
  ASSERT_EQ(std::string(info.dli_fname), want)
      << "the test binary calls another SQLite";
}

void RegisterShims() {
  static std::once_flag once;
  std::call_once(once, [] {
    quiesce_config config{};
    config.size = sizeof(config);
    config.base_vfs = "unix";
    config.vfs_name = "quiesce";
    ASSERT_EQ(quiesce_register(&config), SQLITE_OK);
    config.base_vfs = "unix-excl";
    config.vfs_name = "quiesce-excl";
    ASSERT_EQ(quiesce_register(&config), SQLITE_OK);
    CheckSqliteUnderTest();
  });
}

TempDir::TempDir() {
  std::string tmpl =
      (std::filesystem::temp_directory_path() / "quiesce-test-XXXXXX")
          .string();
  char* made = mkdtemp(tmpl.data());
  if (made == nullptr) std::abort();
  path_ = made;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

Conn::Conn(const std::string& path, const char* vfs, int flags) {
  RegisterShims();
  const int rc = sqlite3_open_v2(path.c_str(), &db_, flags, vfs);
  EXPECT_EQ(rc, SQLITE_OK) << (db_ ? sqlite3_errmsg(db_) : "open failed");
  sqlite3_extended_result_codes(db_, 1);
}

Conn::~Conn() { Close(); }

void Conn::Close() {
  if (db_ != nullptr) {
    EXPECT_EQ(sqlite3_close(db_), SQLITE_OK) << sqlite3_errmsg(db_);
    db_ = nullptr;
  }
}

int Conn::Exec(const std::string& sql) {
  return sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, nullptr);
}

void Conn::Must(const std::string& sql) {
  char* err = nullptr;
  const int rc = sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err);
  EXPECT_EQ(rc, SQLITE_OK) << sql << ": " << (err ? err : "");
  sqlite3_free(err);
}

int64_t Conn::Int(const std::string& sql) {
  sqlite3_stmt* stmt = nullptr;
  EXPECT_EQ(sqlite3_prepare_v2(db_, sql.c_str(), -1, &stmt, nullptr),
            SQLITE_OK)
      << sql << ": " << sqlite3_errmsg(db_);
  int64_t value = -1;
  if (stmt && sqlite3_step(stmt) == SQLITE_ROW) {
    value = sqlite3_column_int64(stmt, 0);
  }
  sqlite3_finalize(stmt);
  return value;
}

std::string Conn::Text(const std::string& sql) {
  sqlite3_stmt* stmt = nullptr;
  EXPECT_EQ(sqlite3_prepare_v2(db_, sql.c_str(), -1, &stmt, nullptr),
            SQLITE_OK)
      << sql << ": " << sqlite3_errmsg(db_);
  std::string value;
  if (stmt && sqlite3_step(stmt) == SQLITE_ROW) {
    const unsigned char* t = sqlite3_column_text(stmt, 0);
    if (t) value = reinterpret_cast<const char*>(t);
  }
  sqlite3_finalize(stmt);
  return value;
}

std::shared_ptr<Database> Find(const std::string& path) {
  Context* context = Context::Get();
  EXPECT_NE(context, nullptr);
  if (context == nullptr) return nullptr;
  auto db = context->FindByPath(path);
  EXPECT_NE(db, nullptr) << "the shim does not know " << path;
  return db;
}

DatabaseInfo Info(const std::string& path) {
  auto db = Find(path);
  return db ? db->Info() : DatabaseInfo{};
}

}  // namespace quiesce::testing
