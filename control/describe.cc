#include "describe.h"

#include <sqlite3.h>

namespace quiesce::control {
namespace {

const char* LockName(int level) {
  switch (level) {
    case SQLITE_LOCK_NONE: return "none";
    case SQLITE_LOCK_SHARED: return "shared";
    case SQLITE_LOCK_RESERVED: return "reserved";
    case SQLITE_LOCK_PENDING: return "pending";
    case SQLITE_LOCK_EXCLUSIVE: return "exclusive";
  }
  return "unknown";
}

// WAL-index lock slots as SQLite names them (reference/sqlite-locking.md).
const char* ShmSlotName(int slot) {
  static const char* const kNames[] = {"write", "checkpoint", "recover",
                                       "read0", "read1",      "read2",
                                       "read3", "read4"};
  return kNames[slot];
}

json ShmLocks(uint8_t mask) {
  json names = json::array();
  for (int slot = 0; slot < 8; ++slot) {
    if (mask & (1u << slot)) names.push_back(ShmSlotName(slot));
  }
  return names;
}

}  // namespace

json DescribePosition(const Position& position) {
  if (position.wal) {
    return {{"salt1", position.salt1},
            {"salt2", position.salt2},
            {"mx_frame", position.mx_frame}};
  }
  return {{"change_counter", position.change_counter}};
}

json DescribeSummary(const DatabaseInfo& info) {
  return {
      {"db", info.id},
      {"path", info.path},
      {"journal_mode", JournalModeName(info.journal_mode)},
      {"locking_mode", LockingModeName(info.locking_mode)},
      {"page_size", info.page_size},
      {"db_pages", info.db_pages},
      {"db_bytes", uint64_t{info.page_size} * info.db_pages},
      {"generation", info.generation},
      {"position", DescribePosition(info.position)},
      {"last_commit_us", info.last_commit_us},
      {"handles", info.handles.size()},
  };
}

json DescribeStatus(const DatabaseInfo& info) {
  json status = DescribeSummary(info);
  status["counters"] = {
      {"transactions", info.transactions},
      {"frames", info.frames},
      {"bytes_written", info.bytes_written},
      {"syncs", info.syncs},
      {"checkpoints", info.checkpoints},
      {"foreign_commits", info.foreign_commits},
  };
  json handles = json::array();
  for (const HandleInfo& h : info.handles) {
    handles.push_back({{"handle", h.handle_id},
                       {"lock", LockName(h.lock_level)},
                       {"shm_shared", ShmLocks(h.shm_shared)},
                       {"shm_exclusive", ShmLocks(h.shm_exclusive)}});
  }
  status["handle_locks"] = std::move(handles);
  const GateStats& g = info.gate;
  // Every host wait quiesce caused, by cause, counted where it happened.
  status["host_waits"] = {
      {"gate", {{"count", g.waits},
                {"total_us", g.wait_us},
                {"max_us", g.max_wait_us}}},
      {"own_lock", {{"count", g.own_waits},
                    {"total_us", g.own_wait_us},
                    {"max_us", g.own_max_wait_us}}},
      {"max_stall_reached", g.stall_timeouts},
  };
  status["gate"] = {
      {"closed", info.gate_closed},
      {"closes", g.closes},
      {"drain_timeouts", g.drain_timeouts},
      {"revocations", g.revocations},
      {"yields", g.yields},
  };
  return status;
}

json DescribeHold(const HoldPoint& hold) {
  return {{"generation", hold.generation},
          {"position", DescribePosition(hold.position)},
          {"locking_mode", LockingModeName(hold.locking_mode)},
          {"files",
           {{"db", hold.db_bytes},
            {"wal", hold.wal_bytes},
            {"journal", hold.journal_bytes}}}};
}

json DescribeEvent(uint64_t db_id, const CommitEvent& event) {
  return {
      {"db", db_id},
      {"seq", event.seq},
      {"generation", event.generation},
      {"foreign", event.foreign},
      {"position", DescribePosition(event.position)},
      {"time_us", event.time_us},
      {"db_pages", event.db_pages},
      {"frames", event.frames},
  };
}

}  // namespace quiesce::control
