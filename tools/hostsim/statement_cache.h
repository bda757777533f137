// Prepared statements kept for a connection's life, as mozStorage keeps
// Gecko's cached statements: each prepared once, reset before every use.
//
// Thread safety: none; one per connection, used on the connection's thread.
#ifndef QUIESCE_TOOLS_HOSTSIM_STATEMENT_CACHE_H_
#define QUIESCE_TOOLS_HOSTSIM_STATEMENT_CACHE_H_

#include <map>
#include <string>

struct sqlite3;
struct sqlite3_stmt;

namespace quiesce::hostsim {

class StatementCache {
 public:
  explicit StatementCache(sqlite3* db) : db_(db) {}
  ~StatementCache() { Clear(); }
  StatementCache(const StatementCache&) = delete;
  StatementCache& operator=(const StatementCache&) = delete;

  // The statement for `sql`, reset and with its bindings cleared; null when
  // it does not prepare (sqlite3_errmsg has why).
  sqlite3_stmt* Get(const std::string& sql);
  // Finalizes every statement (before the connection closes).
  void Clear();

 private:
  sqlite3* db_;                                     // not owned
  std::map<std::string, sqlite3_stmt*> statements_;  // by SQL text
};

}  // namespace quiesce::hostsim

#endif  // QUIESCE_TOOLS_HOSTSIM_STATEMENT_CACHE_H_
