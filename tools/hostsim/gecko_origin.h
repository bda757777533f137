// One origin's Cache API storage as Gecko keeps it (dom/cache): the
// directory <profile>/storage/default/<origin>/cache/ with caches.sqlite,
// morgue/<n>/{uuid}.final body files, .padding and context_open.marker, and
// one connection that does what Cache.put, Cache.delete and
// CacheStorage.open do to it.
//
// Thread safety: none. Like Gecko's DOMCacheThread, one thread opens an
// origin, runs every operation on it and closes it.
#ifndef QUIESCE_TOOLS_HOSTSIM_GECKO_ORIGIN_H_
#define QUIESCE_TOOLS_HOSTSIM_GECKO_ORIGIN_H_

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "statement_cache.h"

struct sqlite3;

namespace quiesce::hostsim {

// What one committed put or delete did, for the operation log.
struct CacheOp {
  enum class Kind { kPut, kDelete };
  Kind kind = Kind::kPut;
  std::string url;
  // Put only: the response body's id, its file's size and SHA-256 (hex).
  std::string body_id;
  int64_t body_disk_size = 0;
  std::string body_sha256;
  // Entries the operation removed (a put replaces its URL's entry).
  int64_t entries_removed = 0;
  // BEGIN IMMEDIATE to the end of COMMIT, in microseconds.
  int64_t transaction_us = 0;
  // When it ended (CLOCK_REALTIME, microseconds since the epoch), so that
  // a benchmark can tell the operations that ran beside its own steps.
  int64_t end_unix_us = 0;
};

class GeckoOrigin {
 public:
  // Opens (creating what is missing) the origin's storage under `profile`
  // with Gecko's connection settings and schema, then opens the cache
  // `cache_name` in the default namespace, creating it the way
  // caches.open() does. Null with *error when any step fails.
  static std::unique_ptr<GeckoOrigin> Open(const std::filesystem::path& profile,
                                           const std::string& origin,
                                           const std::string& cache_name,
                                           std::string* error);
  // Closes if Close was not called.
  ~GeckoOrigin();
  GeckoOrigin(const GeckoOrigin&) = delete;
  GeckoOrigin& operator=(const GeckoOrigin&) = delete;

  // Cache.put(url, response): writes the body as morgue/<n>/{id}.tmp,
  // renames it to .final, then in one BEGIN IMMEDIATE transaction removes
  // the entries the URL matches and inserts the new entry with its
  // headers, URL list and (https) security info; after the commit deletes
  // the replaced entries' body files. On failure rolls back and removes
  // the new body file.
  bool Put(const std::string& url, std::string_view body, CacheOp* op,
           std::string* error);
  // Cache.delete(url): removes the matching entries in one BEGIN IMMEDIATE
  // transaction, then their body files.
  bool Delete(const std::string& url, CacheOp* op, std::string* error);
  // Runs Gecko's incremental vacuum, closes the connection and removes
  // context_open.marker (which a crash would leave behind).
  bool Close(std::string* error);

  const std::string& origin() const { return origin_; }
  const std::string& cache_name() const { return cache_name_; }
  const std::filesystem::path& cache_dir() const { return cache_dir_; }
  // The canonical path of caches.sqlite, as the shim names the database.
  std::filesystem::path db_path() const { return cache_dir_ / "caches.sqlite"; }

 private:
  struct Matched {
    int64_t id = 0;
    std::vector<std::string> body_ids;
    int64_t security_info_id = 0;  // 0: none
  };

  GeckoOrigin(std::string origin, std::string cache_name,
              std::filesystem::path cache_dir);
  bool OpenCache(std::string* error);
  // What Gecko's SetupAction does at the first open after an unclean
  // shutdown (a stale context_open.marker): deletes orphaned caches (no
  // storage row) with their entries and body files, then every .final
  // body file that no row references. It prints what it found on stdout;
  // the second count is what makes real Gecko's quota usage wrap
  // (docs/gecko.md, "Orphan bodies"), so the crash tests expect none.
  bool CleanUpAfterUncleanShutdown(std::string* error);
  bool Exec(const char* sql, std::string* error);
  bool StatementError(const char* what, std::string* error);
  bool FindMatches(std::string_view url_no_query, std::string_view query,
                   std::vector<Matched>* matches, std::string* error);
  bool RemoveEntries(const std::vector<Matched>& matches, std::string* error);
  // The security info row for this origin's (https) connection, its
  // refcount raised; 0 for http.
  bool AddSecurityInfoRef(int64_t* id, std::string* error);
  bool InsertEntry(const std::string& url, std::string_view url_no_query,
                   std::string_view query, const std::string& body_id,
                   int64_t body_disk_size, int64_t security_info_id,
                   std::string* error);
  bool InsertHeader(const char* table, const std::string& name,
                    const std::string& value, int64_t entry_id,
                    std::string* error);
  void Rollback();
  void RemoveBodies(const std::vector<Matched>& matches);

  std::string origin_;       // "https://app1.example"
  std::string cache_name_;   // the Cache API cache this origin writes
  std::filesystem::path cache_dir_;
  std::string security_info_;  // the connection's TLS info blob; "" for http
  sqlite3* db_ = nullptr;
  std::unique_ptr<StatementCache> statements_;
  int64_t cache_id_ = 0;
  int64_t puts_ = 0;  // numbers the X-Hostsim-Put response header
};

}  // namespace quiesce::hostsim

#endif  // QUIESCE_TOOLS_HOSTSIM_GECKO_ORIGIN_H_
