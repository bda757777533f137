// Snapshot helpers shared by the snapshot suites: take a snapshot into a
// file, and check that an image is whole and holds a committed prefix.
#ifndef QUIESCE_TESTS_IMAGE_CHECK_H_
#define QUIESCE_TESTS_IMAGE_CHECK_H_

#include <chrono>
#include <cstdint>
#include <string>

#include "snapshot.h"

namespace quiesce::testing {

SnapshotOptions Within(int seconds);

std::string FileSha256(const std::string& path);

// Checks an image: integrity_check ok, and the table `seq` holds exactly
// 1..k. Returns k.
int64_t CheckImage(const std::string& image);

// A snapshot of the open database at db_path into out_path.
Result<SnapshotResult> SnapshotTo(const std::string& db_path,
                                  const std::string& out_path);

// One step of the torture workload for the random value x: a transaction
// that commits the next number of seq (alone, with a savepoint rolled back
// inside, or with an update and an incremental vacuum), one that rolls
// back, or, in WAL mode, a checkpoint of some kind (`checkpoint` set).
// Every commit adds exactly one number. `begin` starts the transactions.
struct TortureStep {
  std::string sql;                 // empty: nothing to run
  const char* checkpoint = nullptr;  // PASSIVE, FULL, RESTART, TRUNCATE
};
TortureStep RandomTortureStep(unsigned x, bool wal, const std::string& begin);

}  // namespace quiesce::testing

#endif  // QUIESCE_TESTS_IMAGE_CHECK_H_
