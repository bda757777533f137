// A live database for the snapshot suites, in one journal mode and locking
// mode: the host's connection (the only one exclusive locking allows) with
// a table `seq` whose rows 1..k name the commits, and its generation
// before the first of them.
#ifndef QUIESCE_TESTS_LIVE_SNAPSHOT_FIXTURE_H_
#define QUIESCE_TESTS_LIVE_SNAPSHOT_FIXTURE_H_

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "support.h"

namespace quiesce::testing {

struct SnapshotMode {
  const char* journal;  // PRAGMA journal_mode
  bool exclusive;       // PRAGMA locking_mode=EXCLUSIVE, set first
};

// Every journal mode, in normal locking and/or in exclusive locking mode
// (where MEMORY runs too).
inline std::vector<SnapshotMode> SnapshotModes(bool normal, bool exclusive) {
  std::vector<SnapshotMode> modes;
  for (const char* journal : {"wal", "delete", "truncate", "persist"}) {
    if (normal) modes.push_back({journal, false});
  }
  for (const char* journal :
       {"wal", "delete", "truncate", "persist", "memory"}) {
    if (exclusive) modes.push_back({journal, true});
  }
  return modes;
}

// "wal", "delete_exclusive", ...: test names.
inline std::string ModeName(
    const ::testing::TestParamInfo<SnapshotMode>& info) {
  return std::string(info.param.journal) +
         (info.param.exclusive ? "_exclusive" : "");
}

inline std::string Insert(int64_t n, int pad) {
  return "INSERT INTO seq VALUES (" + std::to_string(n) + ", randomblob(" +
         std::to_string(pad) + "))";
}

class LiveSnapshotTest : public ::testing::TestWithParam<SnapshotMode> {
 protected:
  void SetUp() override {
    path_ = dir_.File("live.db");
    host_ = std::make_unique<Conn>(path_);
    // Exclusive before WAL: the wal-index then lives in heap memory and
    // SQLite makes no shared-memory calls at all.
    if (GetParam().exclusive) host_->Must("PRAGMA locking_mode=EXCLUSIVE");
    host_->Must(std::string("PRAGMA journal_mode=") + GetParam().journal);
    host_->Must("CREATE TABLE seq(n INTEGER PRIMARY KEY, pad BLOB)");
    base_ = Info(path_).generation;
  }
  bool wal() const { return std::string(GetParam().journal) == "wal"; }
  // The checkpoint's first column: 1 when it could not finish.
  int Checkpoint(const char* kind) {
    return static_cast<int>(
        host_->Int(std::string("PRAGMA wal_checkpoint(") + kind + ")"));
  }

  TempDir dir_;
  std::string path_;
  std::unique_ptr<Conn> host_;
  uint64_t base_ = 0;
};

}  // namespace quiesce::testing

#endif  // QUIESCE_TESTS_LIVE_SNAPSHOT_FIXTURE_H_
