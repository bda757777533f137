// The process's quiesce state: the SQLite function table, the host's
// configuration, the registered shims and the registry of open databases.
//
// One Context per process, created by the first successful registration and
// never destroyed (SQLite may call a registered VFS until the process ends).
// Thread safety: all methods may be called from any thread.
#ifndef QUIESCE_VFS_CONTEXT_H_
#define QUIESCE_VFS_CONTEXT_H_

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "config.h"
#include "database.h"
#include "mutex.h"
#include "sqlite_api.h"

namespace quiesce {

// Told that a database has new commit events. Called with the database's
// mutex held, on the host's commit path: must not block nor take any
// database lock (write to an eventfd, say).
class CommitObserver {
 public:
  virtual ~CommitObserver() = default;
  virtual void OnCommitEvents(Database& db) = 0;
};

class Context {
 public:
  // The process's context, or null before the first registration.
  static Context* Get();
  // Creates the context on the first call; later calls return it and
  // ignore `config` except for what each registration names itself.
  static Context* GetOrCreate(const Config& config, const SqliteApi& api);

  Context(const Config& config, const SqliteApi& api);
  Context(const Context&) = delete;
  Context& operator=(const Context&) = delete;

  const SqliteApi& api() const { return api_; }
  const Config& config() const { return config_; }

  // A main-database handle opened: returns the database's shared state,
  // creating it (with a new id) when no handle has it open.
  // vfs_name: the shim that opened it, which quiesce's own connection uses;
  // base_vfs: the VFS below that shim.
  std::shared_ptr<Database> AttachMain(const std::string& path, FileId id,
                                       const std::string& vfs_name,
                                       sqlite3_vfs* base_vfs,
                                       bool own) QUIESCE_EXCLUDES(mu_);
  // A main-database handle closed.
  void DetachMain(Database* db, bool own) QUIESCE_EXCLUDES(mu_);

  std::shared_ptr<Database> FindByPath(const std::string& path)
      QUIESCE_EXCLUDES(mu_);
  std::shared_ptr<Database> FindById(uint64_t id) QUIESCE_EXCLUDES(mu_);
  std::vector<std::shared_ptr<Database>> Databases() QUIESCE_EXCLUDES(mu_);

  // Sets the observer, or (null) forgets it without waiting: the only way
  // in a forked child, where a mutex may be held by a thread that is gone.
  void SetCommitObserver(CommitObserver* observer) { observer_.store(observer); }
  // Clears the observer; when it returns no call to it is in flight, so it
  // can go away. A commit that loaded it before the swap calls it with its
  // database's mutex held: taking each database's mutex once waits such a
  // call out.
  void RemoveCommitObserver() QUIESCE_EXCLUDES(mu_);
  void NotifyCommit(Database& db) {
    if (CommitObserver* o = observer_.load(std::memory_order_acquire)) {
      o->OnCommitEvents(db);
    }
  }

  uint64_t NextHandleId() { return next_handle_id_.fetch_add(1) + 1; }

  // Whether a shim was attached in place (quiesce_attach): databases may
  // have been opened before, out of the shim's sight (untracked.h).
  bool attached() const { return attached_.load(std::memory_order_acquire); }
  void SetAttached() { attached_.store(true, std::memory_order_release); }

 private:
  struct Entry {
    std::shared_ptr<Database> db;
    int host_handles = 0;  // the host's main-database handles
    int own_handles = 0;   // quiesce's own connection's
  };

  const Config config_;
  const SqliteApi api_;
  std::atomic<CommitObserver*> observer_{nullptr};
  std::atomic<uint64_t> next_handle_id_{0};
  std::atomic<bool> attached_{false};

  Mutex mu_;
  std::map<FileId, Entry> by_file_ QUIESCE_GUARDED_BY(mu_);
  uint64_t next_db_id_ QUIESCE_GUARDED_BY(mu_) = 0;
};

}  // namespace quiesce

#endif  // QUIESCE_VFS_CONTEXT_H_
