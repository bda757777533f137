#include "host.h"

#include <sqlite3.h>
#include <unistd.h>

#include <atomic>
#include <memory>
#include <chrono>
#include <cstdio>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "quiesce/quiesce.h"

namespace quiesce::soak {
namespace {

constexpr int kWritersPerDb = 3;
constexpr int kKeepRows = 400;  // rows kept per database; older ones go

struct Totals {
  std::atomic<uint64_t> commits{0};
  std::atomic<uint64_t> errors{0};
};

// One database and the app-level lock that serialises its connections.
struct Db {
  std::string path;
  bool wal;
  // Exclusive locking: the one connection there can be, shared by the
  // database's threads (under app_mu); null otherwise.
  sqlite3* shared = nullptr;
  std::mutex app_mu;
};

sqlite3* Open(const std::string& path, Totals& totals) {
  sqlite3* db = nullptr;
  if (sqlite3_open(path.c_str(), &db) != SQLITE_OK) {
    std::fprintf(stderr, "host: open %s: %s\n", path.c_str(),
                 sqlite3_errmsg(db));
    totals.errors.fetch_add(1);
  }
  return db;
}

bool Exec(sqlite3* db, const std::string& sql, Totals& totals) {
  char* err = nullptr;
  const int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err);
  if (rc != SQLITE_OK) {
    std::fprintf(stderr, "host: %s: %s (%d)\n", sql.c_str(),
                 err ? err : "", sqlite3_extended_errcode(db));
    totals.errors.fetch_add(1);
  }
  sqlite3_free(err);
  return rc == SQLITE_OK;
}

void Writer(Db& d, int seed, const std::atomic<bool>& stop, Totals& totals) {
  sqlite3* db = d.shared ? d.shared : Open(d.path, totals);
  for (uint64_t n = 0; !stop.load(); ++n) {
    {
      std::lock_guard<std::mutex> lock(d.app_mu);
      const std::string size = std::to_string(256 + (n * 7919 + seed) % 6000);
      if (Exec(db, "BEGIN", totals)) {
        const bool ok =
            Exec(db, "INSERT INTO t(v) VALUES (randomblob(" + size + "))",
                 totals) &&
            Exec(db, "DELETE FROM t WHERE id <= (SELECT max(id) FROM t) - " +
                         std::to_string(kKeepRows), totals);
        if (ok && Exec(db, "COMMIT", totals)) {
          totals.commits.fetch_add(1);
        } else {
          sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
        }
      }
      if (n % 16 == 0) Exec(db, "SELECT count(*), sum(length(v)) FROM t", totals);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  if (db != d.shared) sqlite3_close(db);
}

// WAL: a passive checkpoint every second, a truncating one every fifth.
void Checkpointer(Db& d, const std::atomic<bool>& stop, Totals& totals) {
  sqlite3* db = d.shared ? d.shared : Open(d.path, totals);
  for (int n = 1; !stop.load(); ++n) {
    std::this_thread::sleep_for(std::chrono::seconds(1));
    std::lock_guard<std::mutex> lock(d.app_mu);
    Exec(db, n % 5 == 0 ? "PRAGMA wal_checkpoint(TRUNCATE)"
                        : "PRAGMA wal_checkpoint(PASSIVE)", totals);
  }
  if (db != d.shared) sqlite3_close(db);
}

}  // namespace

int RunHost(const std::string& dir, const std::string& socket) {
  quiesce_config config{};
  config.size = sizeof(config);
  config.base_vfs = "unix";
  config.vfs_name = "unix";  // take over the default, as GeckoView would
  config.socket_path = socket.c_str();
  config.writable = "1";
  if (quiesce_register(&config) != SQLITE_OK) {
    std::fprintf(stderr, "host: quiesce_register failed\n");
    return 1;
  }
  Totals totals;
  std::vector<std::unique_ptr<Db>> dbs;
  for (const char* name : {kWalDb, kRollbackDb, kExclusiveDb}) {
    auto d = std::make_unique<Db>();
    d->path = dir + "/" + name;
    d->wal = std::string_view(name) != kRollbackDb;
    const bool exclusive = std::string_view(name) == kExclusiveDb;
    sqlite3* db = Open(d->path, totals);
    Exec(db, std::string(exclusive ? "PRAGMA locking_mode=EXCLUSIVE; " : "") +
                 "PRAGMA journal_mode=" + (d->wal ? "WAL" : "DELETE") +
                 "; CREATE TABLE IF NOT EXISTS t(id INTEGER PRIMARY KEY, "
                 "v BLOB)",
         totals);
    if (exclusive) {
      d->shared = db;
    } else {
      sqlite3_close(db);
    }
    dbs.push_back(std::move(d));
  }
  std::atomic<bool> stop{false};
  std::vector<std::thread> threads;
  for (auto& d : dbs) {
    for (int w = 0; w < kWritersPerDb; ++w) {
      threads.emplace_back(Writer, std::ref(*d), w * 131,
                           std::cref(stop), std::ref(totals));
    }
    if (d->wal) {
      threads.emplace_back(Checkpointer, std::ref(*d), std::cref(stop),
                           std::ref(totals));
    }
  }
  std::printf("host: ready\n");
  std::fflush(stdout);
  char buf[64];
  while (read(STDIN_FILENO, buf, sizeof(buf)) > 0) {
  }
  stop.store(true);
  for (std::thread& t : threads) t.join();
  for (auto& d : dbs) sqlite3_close(d->shared);
  quiesce_shutdown();
  std::printf("host: commits %llu errors %llu\n",
              static_cast<unsigned long long>(totals.commits.load()),
              static_cast<unsigned long long>(totals.errors.load()));
  return totals.errors.load() == 0 ? 0 : 1;
}

}  // namespace quiesce::soak
