#include "hold.h"

#include <sys/stat.h>

#include <string>

#include "exclusive_point.h"

namespace quiesce {
namespace {

int64_t FileSize(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 ? static_cast<int64_t>(st.st_size) : -1;
}

}  // namespace

Result<HoldPoint> ReachHoldPoint(Database& db,
                                 Database::Clock::time_point drain_deadline,
                                 Database::Clock::time_point closed_until) {
  HoldPoint hold;
  if (db.Info().locking_mode == LockingMode::kExclusive) {
    auto point = ReachExclusivePoint(db, drain_deadline, closed_until);
    if (!point.ok()) return point.error();
    const ExclusivePoint& at = point.value();
    hold.token = at.token;
    hold.generation = at.point.generation;
    hold.position = at.point.position;
    hold.locking_mode = LockingMode::kExclusive;
    hold.db_bytes = at.db_bytes;
    hold.wal_bytes = at.wal_bytes;
    hold.journal_bytes = 0;
    return hold;  // the files quiesce opened close; the gate stays shut
  }
  auto token = db.CloseGate(Drain::kHold, /*readers_may_proceed=*/false,
                            drain_deadline, closed_until);
  if (!token.ok()) return token.error();
  const DatabaseInfo info = db.Info();
  hold.token = token.value();
  hold.generation = info.generation;
  hold.position = info.position;
  const std::string& path = db.path();
  hold.db_bytes = FileSize(path);
  hold.wal_bytes = FileSize(path + "-wal");
  hold.journal_bytes = FileSize(path + "-journal");
  return hold;
}

}  // namespace quiesce
