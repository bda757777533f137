// The gate-cycling mode of SQLite's testfixture: with
// QUIESCE_TESTFIXTURE_GATE=cycle, the shim's gate is closed and reopened
// under SQLite's own TCL tests, so that host lock requests really wait at a
// closed gate and drains really time out while the tests check every result.
//
// Two sources of closes, both carried out by one background thread per
// process (the "cycler"):
// - around random statements: sqlite3_step of the test code is wrapped
//   (the linker's --wrap, testfixture.mk); at the first step on a database
//   of the shim, then every 1 to 64 steps (seeded; 1 to 8 in the first
//   256 steps of the top testfixture, for the many small test files; the
//   top one sets QUIESCE_TESTFIXTURE_GATE_CHILD=1 for its children), the
//   step's main database is handed to the cycler, and the step goes ahead
//   only once the gate is closing, so its first lock request waits (or, in
//   a transaction, the drain waits for it and may time out); the cycler
//   holds such a close until a request has waited at it (at most 2 ms);
// - at random short intervals (0.1 to 4 ms), a random open database.
// Each close picks a drain level (hold, inject, writers; mostly the
// exclusive-locking write gate, with a random WAL guard, on a database in
// locking_mode=EXCLUSIVE, and one close in eight elsewhere),
// whether readers may proceed, a drain deadline of 0.5 to 4 ms and a lease
// of 1 to 4 ms; the cycler holds the point a random time within the lease,
// or, one close in eight, lets the lease lapse so that a waiter or the
// reopen revokes it. Every wait is thus a few ms, far below max_stall.
// (The waits at the write gate are writes, not lock requests: they are
// counted as waits too.)
//
// Environment:
//   QUIESCE_TESTFIXTURE_GATE         "cycle": on; unset, "" or "off": off
//   QUIESCE_TESTFIXTURE_GATE_SEED    the seed (decimal); default: random
//   QUIESCE_TESTFIXTURE_GATE_REPORT  file to append the report lines to;
//                                    default: stderr
// Child testfixtures that a test starts inherit the environment, so each
// runs a cycler of its own (the gate is per process: each testfixture is a
// host of its own) and appends its own line to the same report file. A
// child must not write to stderr (Tcl's exec counts that as an error), so
// runs that start children must name a report file.
//
// Report lines (one per process, "key=value" fields):
//   quiesce-gate-start pid=P seed=S
//   quiesce-gate pid=P seed=S attempts=.. closes=.. drain_timeouts=..
//     errors=.. lapsed=.. write_gates=.. kicks=.. kicks_closed=.. steps=..
//     waits=.. max_wait_us=.. stall_timeouts=.. revocations=..
// attempts/closes/drain_timeouts/errors/lapsed: the cycler's CloseGate calls
// and their outcomes (lapsed: the lease ran out before the reopen);
// write_gates: the closes that were the exclusive-locking write gate; kicks:
// closes asked for by a statement (0: no statement ran on a database of
// the shim), kicks_closed: those the statement saw closing before it ran;
// steps: sqlite3_step calls; waits, max_wait_us,
// stall_timeouts, revocations: the gates' own GateStats, summed over every
// database the cycler closed. The final line is written at exit, after the
// cycler has stopped.
//
// Thread safety: the cycler uses only the Database's thread-safe gate API
// and shared_ptrs from Context::Databases()/FindByPath(); it never calls
// SQLite, so SQLite's threading mode, sqlite3_shutdown() and
// sqlite3_initialize() do not concern it.
#ifndef QUIESCE_TOOLS_SQLITE_PROGRAMS_TESTFIXTURE_GATE_H_
#define QUIESCE_TOOLS_SQLITE_PROGRAMS_TESTFIXTURE_GATE_H_

struct sqlite3_stmt;

namespace quiesce_testfixture {

// Starts the cycler when QUIESCE_TESTFIXTURE_GATE asks for it, once per
// process (later calls, after sqlite3_shutdown() + sqlite3_initialize(),
// do nothing). Call after the shim is registered. Returns false, having
// printed why, on a bad setting.
bool StartGateModeFromEnv();

// Called before each sqlite3_step of the test code.
void BeforeStep(sqlite3_stmt* stmt);

}  // namespace quiesce_testfixture

#endif  // QUIESCE_TOOLS_SQLITE_PROGRAMS_TESTFIXTURE_GATE_H_
