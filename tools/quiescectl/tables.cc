#include "tables.h"

#include <ctime>
#include <string>

namespace quiesce::ctl {
namespace {

// Reads a field that a newer or older host may lack, without throwing.
template <typename T>
T Field(const json& j, const char* key, T fallback) {
  const auto it = j.find(key);
  if (it == j.end()) return fallback;
  try {
    return it->get<T>();
  } catch (const json::exception&) {
    return fallback;
  }
}

std::string Position(const json& p) {
  if (p.contains("mx_frame")) {
    char buf[64];
    std::snprintf(buf, sizeof(buf), "wal %08llx:%08llx@%llu",
                  Field<unsigned long long>(p, "salt1", 0),
                  Field<unsigned long long>(p, "salt2", 0),
                  Field<unsigned long long>(p, "mx_frame", 0));
    return buf;
  }
  return "counter " + std::to_string(Field<uint64_t>(p, "change_counter", 0));
}

// Local time with milliseconds, or "-" for never.
std::string Time(int64_t us) {
  if (us <= 0) return "-";
  const time_t secs = static_cast<time_t>(us / 1000000);
  struct tm tm;
  localtime_r(&secs, &tm);
  char buf[64];
  const size_t n = std::strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M:%S", &tm);
  std::snprintf(buf + n, sizeof(buf) - n, ".%03d",
                static_cast<int>((us / 1000) % 1000));
  return buf;
}

std::string Size(uint64_t bytes) {
  char buf[32];
  if (bytes >= (1u << 20)) {
    std::snprintf(buf, sizeof(buf), "%.1f MiB", bytes / 1048576.0);
  } else if (bytes >= 1024) {
    std::snprintf(buf, sizeof(buf), "%.1f KiB", bytes / 1024.0);
  } else {
    std::snprintf(buf, sizeof(buf), "%llu B",
                  static_cast<unsigned long long>(bytes));
  }
  return buf;
}

std::string Names(const json& list) {
  std::string out;
  if (!list.is_array()) return "-";
  for (const auto& n : list) {
    if (!n.is_string()) continue;
    if (!out.empty()) out += ',';
    out += n.get_ref<const std::string&>();
  }
  return out.empty() ? "-" : out;
}

}  // namespace

// Databases the host opened before quiesce attached: named, never usable.
void PrintUntracked(const json& result, FILE* out) {
  const json untracked = Field<json>(result, "untracked", json::array());
  if (untracked.empty()) return;
  std::fprintf(out, "\nuntracked (%s):\n",
               Field<std::string>(untracked[0], "reason", "?").c_str());
  std::fprintf(out, "%-4s %-8s %-24s %s\n", "ID", "JOURNAL", "FILES",
               "PATH");
  for (const auto& u : untracked) {
    std::fprintf(out, "%-4s %-8s %-24s %s\n",
                 Field<bool>(u, "partly_tracked", false) ? "part" : "-",
                 "untracked", Names(Field<json>(u, "files", json::array()))
                                  .c_str(),
                 Field<std::string>(u, "path", "?").c_str());
  }
}

void PrintList(const json& result, FILE* out) {
  const json dbs = Field<json>(result, "databases", json::array());
  if (dbs.empty()) {
    std::fprintf(out, "no databases open through the shim\n");
    PrintUntracked(result, out);
    return;
  }
  std::fprintf(out, "%-4s %-8s %-9s %10s %10s %7s %-23s %s\n", "ID",
               "JOURNAL", "LOCKING", "GENERATION", "SIZE", "HANDLES",
               "LAST COMMIT", "PATH");
  for (const auto& db : dbs) {
    std::fprintf(
        out, "%-4llu %-8s %-9s %10llu %10s %7llu %-23s %s\n",
        Field<unsigned long long>(db, "db", 0),
        Field<std::string>(db, "journal_mode", "?").c_str(),
        Field<std::string>(db, "locking_mode", "?").c_str(),
        Field<unsigned long long>(db, "generation", 0),
        Size(Field<uint64_t>(db, "db_bytes", 0)).c_str(),
        Field<unsigned long long>(db, "handles", 0),
        Time(Field<int64_t>(db, "last_commit_us", 0)).c_str(),
        Field<std::string>(db, "path", "?").c_str());
  }
  PrintUntracked(result, out);
}

void PrintStatus(const json& result, FILE* out) {
  const json none = json::object();
  std::fprintf(out, "database      %llu  %s\n",
               Field<unsigned long long>(result, "db", 0),
               Field<std::string>(result, "path", "?").c_str());
  std::fprintf(out, "journal       %s (locking %s)\n",
               Field<std::string>(result, "journal_mode", "?").c_str(),
               Field<std::string>(result, "locking_mode", "?").c_str());
  std::fprintf(out, "generation    %llu\n",
               Field<unsigned long long>(result, "generation", 0));
  std::fprintf(out, "position      %s\n",
               Position(Field<json>(result, "position", none)).c_str());
  std::fprintf(out, "size          %s (%llu pages of %llu bytes)\n",
               Size(Field<uint64_t>(result, "db_bytes", 0)).c_str(),
               Field<unsigned long long>(result, "db_pages", 0),
               Field<unsigned long long>(result, "page_size", 0));
  std::fprintf(out, "last commit   %s\n",
               Time(Field<int64_t>(result, "last_commit_us", 0)).c_str());
  const json counters = Field<json>(result, "counters", none);
  for (const auto& [name, value] : counters.items()) {
    std::fprintf(out, "%-13s %s\n", name.c_str(), value.dump().c_str());
  }
  const json waits = Field<json>(result, "host_waits", none);
  for (const char* cause : {"gate", "own_lock"}) {
    const json w = Field<json>(waits, cause, none);
    std::fprintf(out, "host waits    %-9s %llu, %.1f ms in all, longest %.1f ms\n",
                 cause, Field<unsigned long long>(w, "count", 0),
                 Field<uint64_t>(w, "total_us", 0) / 1000.0,
                 Field<uint64_t>(w, "max_us", 0) / 1000.0);
  }
  const auto stalls = Field<unsigned long long>(waits, "max_stall_reached", 0);
  std::fprintf(out, "max_stall     %llu%s\n", stalls,
               stalls ? "  (FAULT: a host request waited max_stall and went "
                        "ahead; see the host's SQLite log)"
                      : "");
  const json gate = Field<json>(result, "gate", none);
  std::fprintf(out, "gate          %s; %llu closes, %llu drain timeouts, "
               "%llu revoked, %llu yields\n",
               Field<bool>(gate, "closed", false) ? "closed" : "open",
               Field<unsigned long long>(gate, "closes", 0),
               Field<unsigned long long>(gate, "drain_timeouts", 0),
               Field<unsigned long long>(gate, "revocations", 0),
               Field<unsigned long long>(gate, "yields", 0));
  const json handles = Field<json>(result, "handle_locks", json::array());
  std::fprintf(out, "\n%-8s %-10s %-24s %s\n", "HANDLE", "LOCK", "SHM SHARED",
               "SHM EXCLUSIVE");
  for (const auto& h : handles) {
    std::fprintf(out, "%-8llu %-10s %-24s %s\n",
                 Field<unsigned long long>(h, "handle", 0),
                 Field<std::string>(h, "lock", "?").c_str(),
                 Names(Field<json>(h, "shm_shared", json())).c_str(),
                 Names(Field<json>(h, "shm_exclusive", json())).c_str());
  }
}

void PrintEvent(const json& event, FILE* out) {
  const std::string kind = Field<std::string>(event, "event", "?");
  const unsigned long long db = Field<unsigned long long>(event, "db", 0);
  if (kind == "commit") {
    const bool foreign = Field<bool>(event, "foreign", false);
    std::fprintf(out, "%s db %llu gen %llu seq %llu %s%s frames %llu pages %llu\n",
                 Time(Field<int64_t>(event, "time_us", 0)).c_str(), db,
                 Field<unsigned long long>(event, "generation", 0),
                 Field<unsigned long long>(event, "seq", 0),
                 foreign ? "FOREIGN " : "",
                 Position(Field<json>(event, "position", json::object()))
                     .c_str(),
                 Field<unsigned long long>(event, "frames", 0),
                 Field<unsigned long long>(event, "db_pages", 0));
  } else if (kind == "closed") {
    std::fprintf(out, "db %llu closed by the host\n", db);
  } else {
    std::fprintf(out, "%s\n", event.dump().c_str());
  }
}

}  // namespace quiesce::ctl
