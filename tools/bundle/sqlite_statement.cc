#include "sqlite_statement.h"

#include "absl/strings/str_cat.h"

namespace quiesce::bundle {

absl::Status SqliteError(sqlite3* db, std::string_view what) {
  return absl::InternalError(
      absl::StrCat(std::string(what), ": ", sqlite3_errmsg(db), " (SQLite error ",
                   sqlite3_extended_errcode(db), ")"));
}

absl::StatusOr<Statement> Statement::Prepare(sqlite3* db,
                                             std::string_view sql) {
  sqlite3_stmt* stmt = nullptr;
  if (sqlite3_prepare_v2(db, sql.data(), static_cast<int>(sql.size()), &stmt,
                         nullptr) != SQLITE_OK) {
    sqlite3_finalize(stmt);
    return SqliteError(db, absl::StrCat("cannot prepare `", std::string(sql), "`"));
  }
  return Statement(db, stmt);
}

Statement::Statement(Statement&& other) noexcept
    : db_(other.db_), stmt_(other.stmt_) {
  other.stmt_ = nullptr;
}

Statement::~Statement() { sqlite3_finalize(stmt_); }

absl::StatusOr<bool> Statement::Step() {
  int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  return SqliteError(db_, absl::StrCat("`", sqlite3_sql(stmt_), "` failed"));
}

void Statement::BindInt(int index, int64_t value) {
  sqlite3_bind_int64(stmt_, index, value);
}

void Statement::BindBlob(int index, std::string_view bytes) {
  // A zero-length blob, not NULL, for empty input.
  sqlite3_bind_blob(stmt_, index, bytes.empty() ? "" : bytes.data(),
                    static_cast<int>(bytes.size()), SQLITE_TRANSIENT);
}

void Statement::BindText(int index, std::string_view text) {
  sqlite3_bind_text(stmt_, index, text.data(), static_cast<int>(text.size()),
                    SQLITE_TRANSIENT);
}

int64_t Statement::Int(int column) const {
  return sqlite3_column_int64(stmt_, column);
}

std::string Statement::Text(int column) const {
  const unsigned char* text = sqlite3_column_text(stmt_, column);
  if (text == nullptr) return {};
  return std::string(reinterpret_cast<const char*>(text),
                     static_cast<size_t>(sqlite3_column_bytes(stmt_, column)));
}

bool Statement::IsNull(int column) const {
  return sqlite3_column_type(stmt_, column) == SQLITE_NULL;
}

SqlValue Statement::Value(int column) const {
  switch (sqlite3_column_type(stmt_, column)) {
    case SQLITE_INTEGER:
      return SqlValue::Integer(Int(column));
    case SQLITE_FLOAT: {
      SqlValue v;
      v.type = SqlValue::Type::kReal;
      v.real = sqlite3_column_double(stmt_, column);
      return v;
    }
    case SQLITE_TEXT:
      return SqlValue::Text(Text(column));
    case SQLITE_BLOB: {
      const void* blob = sqlite3_column_blob(stmt_, column);
      size_t size = static_cast<size_t>(sqlite3_column_bytes(stmt_, column));
      return SqlValue::Blob(
          blob == nullptr ? std::string()
                          : std::string(static_cast<const char*>(blob), size));
    }
    default:
      return SqlValue::Null();
  }
}

}  // namespace quiesce::bundle
