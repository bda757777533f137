// Injections: a client's SQL run on quiesce's own connection to a live
// database, in one BEGIN IMMEDIATE transaction, at a quiescent point.
//
// The script is prepared (and checked by the authorizer) before the gate
// closes, so a bad script costs the host nothing. Then the gate closes to
// new host transactions, in-flight ones drain (strictly: readers too,
// unless the client asks `readers_may_proceed`), the transaction runs and
// commits or rolls back as a whole, and the gate reopens: host transactions
// that arrived meanwhile start on the new state, with no SQLITE_BUSY and no
// SQLITE_BUSY_SNAPSHOT. Everything ends before the lease cap (max_stall
// less a margin): a script still running then is interrupted and rolled
// back, and reported as a timeout.
//
// What a script may do (the authorizer): DML on the live database, reads of
// the staged database attached read-only; no ATTACH or DETACH, no
// transaction or savepoint statements, no load_extension, no virtual
// tables, no PRAGMA that sets anything; DDL only when allowed.
#ifndef QUIESCE_VFS_INJECT_H_
#define QUIESCE_VFS_INJECT_H_

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <string>

#include "database.h"
#include "result.h"

namespace quiesce {

struct InjectRequest {
  std::string sql;
  // Named parameters (":name", "@name" or "$name" in the script, given
  // here without the prefix) bound as blobs.
  std::map<std::string, std::string> blobs;
  // A staged database to attach read-only under attach_name (-1: none).
  int attach_fd = -1;
  std::string attach_name = "staged";
  // Bind parameters not in `blobs` from the staged database's table
  // quiesce_params(name TEXT PRIMARY KEY, value BLOB): how a client passes
  // more blobs than a request carries descriptors.
  bool params_from_attachment = false;
  bool readers_may_proceed = false;  // see DESIGN.md: a documented risk
  bool dry_run = false;              // run, report, roll back
  bool allow_ddl = false;
  // Nonzero: run inside a quiescent point the caller already holds (a
  // control session's hold, whose gate closed with this token, at the hold
  // drain level, which drains everything the injection's would). The gate
  // is then neither closed nor reopened here, and no checkpoint follows;
  // the caller sets `deadline` before the point's end.
  uint64_t held_token = 0;
  // Set by someone else to stop the injection (it rolls back).
  const std::atomic<bool>* cancelled = nullptr;
  // The client's own limit; the lease cap applies whatever it says.
  std::chrono::steady_clock::time_point deadline =
      std::chrono::steady_clock::time_point::max();
};

struct InjectResult {
  int64_t changes = 0;        // rows changed by the script
  // The rowid of the script's last successful INSERT (0 if none): how a
  // client learns the id of a row it made, for the next injection.
  int64_t last_insert_rowid = 0;
  int statements = 0;
  bool committed = false;     // false for a dry run
  uint64_t generation = 0;    // the database's generation afterwards
  Position position;
  uint64_t drain_us = 0;      // waiting for in-flight host transactions
  uint64_t gate_closed_us = 0;  // new host transactions held back
};

Result<InjectResult> Inject(Database& db, const InjectRequest& request);

}  // namespace quiesce

#endif  // QUIESCE_VFS_INJECT_H_
