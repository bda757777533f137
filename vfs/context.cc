#include "context.h"

namespace quiesce {
namespace {

std::atomic<Context*> g_context{nullptr};
Mutex g_create_mu;

}  // namespace

Context* Context::Get() { return g_context.load(std::memory_order_acquire); }

Context* Context::GetOrCreate(const Config& config, const SqliteApi& api) {
  MutexLock lock(&g_create_mu);
  Context* context = g_context.load(std::memory_order_acquire);
  if (context == nullptr) {
    // Never deleted: registered VFSes point into it for the process's life.
    context = new Context(config, api);
    g_context.store(context, std::memory_order_release);
  }
  return context;
}

Context::Context(const Config& config, const SqliteApi& api)
    : config_(config), api_(api) {}

std::shared_ptr<Database> Context::AttachMain(const std::string& path,
                                              FileId id,
                                              const std::string& vfs_name,
                                              sqlite3_vfs* base_vfs,
                                              bool own) {
  MutexLock lock(&mu_);
  Entry& entry = by_file_[id];
  if (entry.db == nullptr) {
    entry.db =
        std::make_shared<Database>(this, ++next_db_id_, path, id, vfs_name,
                                   base_vfs);
  }
  ++(own ? entry.own_handles : entry.host_handles);
  return entry.db;
}

void Context::DetachMain(Database* db, bool own) {
  MutexLock lock(&mu_);
  auto it = by_file_.find(db->file_id());
  if (it == by_file_.end() || it->second.db.get() != db) return;
  --(own ? it->second.own_handles : it->second.host_handles);
  if (it->second.host_handles == 0 && it->second.own_handles == 0) {
    by_file_.erase(it);
  }
}

std::shared_ptr<Database> Context::FindByPath(const std::string& path) {
  MutexLock lock(&mu_);
  for (auto& [id, entry] : by_file_) {
    if (entry.db->path() == path) return entry.db;
  }
  return nullptr;
}

std::shared_ptr<Database> Context::FindById(uint64_t id) {
  MutexLock lock(&mu_);
  for (auto& [file, entry] : by_file_) {
    if (entry.db->id() == id) return entry.db;
  }
  return nullptr;
}

void Context::RemoveCommitObserver() {
  observer_.store(nullptr);
  for (const auto& db : Databases()) db->Fence();
}

std::vector<std::shared_ptr<Database>> Context::Databases() {
  MutexLock lock(&mu_);
  std::vector<std::shared_ptr<Database>> out;
  out.reserve(by_file_.size());
  for (auto& [file, entry] : by_file_) out.push_back(entry.db);
  return out;
}

}  // namespace quiesce
