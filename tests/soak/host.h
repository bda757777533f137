// The soak's host process: the quiesce shim as the "unix" VFS with its
// control server, and a torture workload on three databases (WAL, rollback
// journal, and WAL in locking_mode=EXCLUSIVE, whose one connection all its
// threads share): writer threads serialised per database the way Gecko
// serialises an origin, no busy handler, rows added and old ones trimmed so
// the data stays the same size, and checkpoints (passive and truncating)
// mixed in. Every SQLite error the host sees is counted: quiesce must cause
// none.
#ifndef QUIESCE_TESTS_SOAK_HOST_H_
#define QUIESCE_TESTS_SOAK_HOST_H_

#include <string>

namespace quiesce::soak {

inline constexpr const char* kWalDb = "wal.db";
inline constexpr const char* kRollbackDb = "rollback.db";
inline constexpr const char* kExclusiveDb = "exclusive.db";

// Runs until stdin reaches end of file (the driver closes it), then prints
// one line to stdout: "host: commits N errors N" and returns the exit
// status (0 when no error was seen).
int RunHost(const std::string& dir, const std::string& socket);

}  // namespace quiesce::soak

#endif  // QUIESCE_TESTS_SOAK_HOST_H_
