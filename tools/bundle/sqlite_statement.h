// A prepared statement that finalizes itself, and SQLite errors as
// absl::Status. For the bundle library's reads of database images.
#ifndef QUIESCE_TOOLS_BUNDLE_SQLITE_STATEMENT_H_
#define QUIESCE_TOOLS_BUNDLE_SQLITE_STATEMENT_H_

#include <sqlite3.h>

#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "cache_bundle.h"

namespace quiesce::bundle {

absl::Status SqliteError(sqlite3* db, std::string_view what);

class Statement {
 public:
  static absl::StatusOr<Statement> Prepare(sqlite3* db, std::string_view sql);
  Statement(Statement&& other) noexcept;
  Statement& operator=(Statement&&) = delete;
  Statement(const Statement&) = delete;
  ~Statement();

  sqlite3_stmt* get() const { return stmt_; }
  // SQLITE_ROW or SQLITE_DONE; anything else becomes an error status.
  absl::StatusOr<bool> Step();
  void BindInt(int index, int64_t value);
  void BindBlob(int index, std::string_view bytes);
  void BindText(int index, std::string_view text);
  int64_t Int(int column) const;
  std::string Text(int column) const;
  SqlValue Value(int column) const;
  bool IsNull(int column) const;

 private:
  Statement(sqlite3* db, sqlite3_stmt* stmt) : db_(db), stmt_(stmt) {}
  sqlite3* db_;
  sqlite3_stmt* stmt_;
};

}  // namespace quiesce::bundle

#endif  // QUIESCE_TOOLS_BUNDLE_SQLITE_STATEMENT_H_
