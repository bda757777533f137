#include "image_check.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <unistd.h>

#include <cstdio>

#include "sha256.h"
#include "support.h"

namespace quiesce::testing {

SnapshotOptions Within(int seconds) {
  SnapshotOptions opt;
  opt.deadline =
      std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
  return opt;
}

std::string FileSha256(const std::string& path) {
  FILE* f = fopen(path.c_str(), "rb");
  EXPECT_NE(f, nullptr);
  Sha256 sha;
  char buf[65536];
  size_t n;
  while (f && (n = fread(buf, 1, sizeof(buf), f)) > 0) sha.Update(buf, n);
  if (f) fclose(f);
  return sha.FinishHex();
}

// Checks an image: integrity_check ok, and the sequence table holds exactly
// 1..k. Returns k.
int64_t CheckImage(const std::string& image) {
  sqlite3* db = nullptr;
  EXPECT_EQ(sqlite3_open_v2(image.c_str(), &db, SQLITE_OPEN_READONLY, "unix"),
            SQLITE_OK);
  auto scalar = [&](const char* sql) {
    sqlite3_stmt* st = nullptr;
    EXPECT_EQ(sqlite3_prepare_v2(db, sql, -1, &st, nullptr), SQLITE_OK)
        << sqlite3_errmsg(db);
    std::string out;
    if (st && sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0)) {
      out = reinterpret_cast<const char*>(sqlite3_column_text(st, 0));
    }
    sqlite3_finalize(st);
    return out;
  };
  EXPECT_EQ(scalar("PRAGMA integrity_check"), "ok") << image;
  const int64_t count = std::stoll(scalar("SELECT count(*) FROM seq"));
  const int64_t max = std::stoll(scalar("SELECT coalesce(max(n), 0) FROM seq"));
  const int64_t min = std::stoll(scalar("SELECT coalesce(min(n), 1) FROM seq"));
  EXPECT_EQ(count, max) << "not a committed prefix";
  EXPECT_EQ(min, 1);
  sqlite3_close(db);
  return max;
}

Result<SnapshotResult> SnapshotTo(const std::string& db_path,
                                  const std::string& out_path) {
  const int fd = open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  EXPECT_GE(fd, 0);
  auto result = WriteSnapshot(*Find(db_path), fd, Within(30));
  close(fd);
  return result;
}

TortureStep RandomTortureStep(unsigned x, bool wal, const std::string& begin) {
  static const char* const kCheckpoints[] = {"PASSIVE", "FULL", "RESTART",
                                             "TRUNCATE"};
  const unsigned r = (x >> 16) % 100;
  const std::string next = "INSERT INTO seq SELECT coalesce(max(n),0)+1, ";
  TortureStep step;
  if (r < 50) {
    step.sql = begin + "; " + next + "randomblob(" +
               std::to_string(50 + x % 9000) + ") FROM seq; COMMIT";
  } else if (r < 65) {
    step.sql = begin + "; " + next +
               "randomblob(100) FROM seq; SAVEPOINT s; INSERT INTO seq "
               "SELECT max(n)+1, randomblob(20000) FROM seq; ROLLBACK TO s; "
               "RELEASE s; COMMIT";
  } else if (r < 75) {
    step.sql = begin + "; " + next + "randomblob(60000) FROM seq; ROLLBACK";
  } else if (r < 85) {
    step.sql = begin + "; UPDATE seq SET pad = NULL WHERE n % 7 = " +
               std::to_string(x % 7) + "; " + next +
               "NULL FROM seq; PRAGMA incremental_vacuum; COMMIT";
  } else if (wal) {
    step.checkpoint = kCheckpoints[x % 4];
  }
  return step;
}

}  // namespace quiesce::testing
