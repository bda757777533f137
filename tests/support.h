// Helpers shared by the GoogleTest suites: a temporary directory, SQLite
// connections through the shim, and the shim's view of a database.
#ifndef QUIESCE_TESTS_SUPPORT_H_
#define QUIESCE_TESTS_SUPPORT_H_

#include <sqlite3.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>

#include "database.h"

namespace quiesce::testing {

// The shims every test can use, registered once per process:
//   "quiesce"       over "unix"
//   "quiesce-excl"  over "unix-excl"
void RegisterShims();

class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }
  std::string File(const std::string& name) const {
    return (path_ / name).string();
  }

 private:
  std::filesystem::path path_;
};

// A connection; closes on destruction.
class Conn {
 public:
  Conn(const std::string& path, const char* vfs = "quiesce",
       int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
  ~Conn();
  Conn(const Conn&) = delete;
  Conn& operator=(const Conn&) = delete;

  sqlite3* get() const { return db_; }
  // Runs SQL and returns the result code (errors are not fatal here).
  int Exec(const std::string& sql);
  // Runs SQL and fails the current test on any error.
  void Must(const std::string& sql);
  // The first column of the first row, as an integer.
  int64_t Int(const std::string& sql);
  std::string Text(const std::string& sql);
  void Close();

 private:
  sqlite3* db_ = nullptr;
};

// Polls `done` every millisecond for up to 20 s: a bound on a wait for
// another thread, not a timing assertion. False when it never came true.
template <typename Done>
bool Eventually(Done done) {
  const auto give_up =
      std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (!done()) {
    if (std::chrono::steady_clock::now() >= give_up) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

// The shim's state of the open database at path (fails the test when the
// shim does not know it).
DatabaseInfo Info(const std::string& path);
std::shared_ptr<Database> Find(const std::string& path);

}  // namespace quiesce::testing

#endif  // QUIESCE_TESTS_SUPPORT_H_
