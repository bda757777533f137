#include "staged_params.h"

#include <sqlite3.h>

#include "sqlite_statement.h"

namespace quiesce::ctl {
namespace {

using bundle::SqliteError;
using bundle::Statement;

// Closes the connection on every path.
struct Connection {
  sqlite3* db = nullptr;
  ~Connection() { sqlite3_close(db); }
};

absl::Status Exec(sqlite3* db, const char* sql) {
  if (sqlite3_exec(db, sql, nullptr, nullptr, nullptr) != SQLITE_OK) {
    return SqliteError(db, sql);
  }
  return absl::OkStatus();
}

absl::Status Fill(
    sqlite3* db,
    const std::vector<std::pair<std::string, std::string>>& blobs) {
  if (auto s = Exec(db,
                    "PRAGMA journal_mode=DELETE;"
                    "CREATE TABLE quiesce_params("
                    "name TEXT PRIMARY KEY, value BLOB) WITHOUT ROWID;"
                    "BEGIN");
      !s.ok()) {
    return s;
  }
  auto insert = Statement::Prepare(
      db, "INSERT INTO quiesce_params(name, value) VALUES (?1, ?2)");
  if (!insert.ok()) return insert.status();
  for (const auto& [name, bytes] : blobs) {
    const bool prefixed = !name.empty() && (name[0] == ':' ||
                                            name[0] == '@' || name[0] == '$');
    insert->BindText(1, prefixed ? std::string_view(name).substr(1)
                                 : std::string_view(name));
    insert->BindBlob(2, bytes);
    if (auto done = insert->Step(); !done.ok()) return done.status();
    sqlite3_reset(insert->get());
  }
  return Exec(db, "COMMIT");
}

}  // namespace

absl::Status WriteStagedParams(
    const std::vector<std::pair<std::string, std::string>>& blobs,
    const std::filesystem::path& path) {
  std::error_code ec;
  std::filesystem::remove(path, ec);
  Connection c;
  if (sqlite3_open_v2(path.c_str(), &c.db,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE,
                      nullptr) != SQLITE_OK) {
    return SqliteError(c.db, "creating " + path.string());
  }
  absl::Status s = Fill(c.db, blobs);
  if (!s.ok()) std::filesystem::remove(path, ec);
  return s;
}

}  // namespace quiesce::ctl
