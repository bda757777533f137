// Reads Gecko's Cache API tables (dom/cache/DBSchema.cpp) from a database
// image, taking the schema from the database itself.
#include <sqlite3.h>

#include <functional>
#include <unordered_map>

#include "absl/strings/str_cat.h"
#include "cache_bundle.h"
#include "digest.h"
#include "gecko_names.h"
#include "sqlite_statement.h"

namespace quiesce::bundle {

bool SchemaInfo::HasTable(std::string_view table) const {
  return tables.find(std::string(table)) != tables.end();
}

const std::vector<ColumnInfo>* SchemaInfo::Columns(
    std::string_view table) const {
  auto it = tables.find(std::string(table));
  return it == tables.end() ? nullptr : &it->second;
}

bool SchemaInfo::HasColumn(std::string_view table,
                           std::string_view column) const {
  const std::vector<ColumnInfo>* columns = Columns(table);
  if (columns == nullptr) return false;
  for (const ColumnInfo& c : *columns) {
    if (c.name == column) return true;
  }
  return false;
}

std::string CacheEntry::Text(std::string_view column) const {
  auto it = columns.find(std::string(column));
  if (it == columns.end() || it->second.type != SqlValue::Type::kText) {
    return {};
  }
  return it->second.bytes;
}

std::optional<int64_t> CacheEntry::Integer(std::string_view column) const {
  auto it = columns.find(std::string(column));
  if (it == columns.end() || it->second.type != SqlValue::Type::kInteger) {
    return std::nullopt;
  }
  return it->second.integer;
}

std::string CacheEntry::RequestUrl() const {
  return Text("request_url_no_query") + Text("request_url_query");
}

namespace {

// Reads of an image need no transaction, but the same code may be pointed
// at a database that something else writes: one read transaction makes the
// reads of one call agree with each other.
class ReadTransaction {
 public:
  explicit ReadTransaction(sqlite3* db)
      : db_(db), owned_(sqlite3_get_autocommit(db) != 0) {}
  absl::Status Begin() {
    if (!owned_) return absl::OkStatus();
    if (sqlite3_exec(db_, "BEGIN", nullptr, nullptr, nullptr) != SQLITE_OK) {
      owned_ = false;
      return SqliteError(db_, "cannot begin a read transaction");
    }
    return absl::OkStatus();
  }
  ~ReadTransaction() {
    if (owned_) sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
  }

 private:
  sqlite3* db_;
  bool owned_;
};

absl::StatusOr<SchemaInfo> ReadSchemaInTransaction(sqlite3* db) {
  SchemaInfo schema;
  {
    absl::StatusOr<Statement> st = Statement::Prepare(db, "PRAGMA user_version");
    if (!st.ok()) return st.status();
    absl::StatusOr<bool> row = st->Step();
    if (!row.ok()) return row.status();
    schema.user_version = *row ? st->Int(0) : 0;
  }
  absl::StatusOr<Statement> objects = Statement::Prepare(
      db, "SELECT type, name FROM sqlite_master "
          "WHERE type IN ('table', 'trigger') ORDER BY name");
  if (!objects.ok()) return objects.status();
  absl::StatusOr<Statement> columns = Statement::Prepare(
      db, "SELECT name, \"notnull\", dflt_value IS NOT NULL "
          "FROM pragma_table_info(?1) ORDER BY cid");
  if (!columns.ok()) return columns.status();
  for (;;) {
    absl::StatusOr<bool> row = objects->Step();
    if (!row.ok()) return row.status();
    if (!*row) break;
    std::string type = objects->Text(0), name = objects->Text(1);
    if (type == "trigger") {
      schema.triggers.insert(name);
      continue;
    }
    std::vector<ColumnInfo>& table = schema.tables[name];
    sqlite3_reset(columns->get());
    columns->BindText(1, name);
    for (;;) {
      absl::StatusOr<bool> crow = columns->Step();
      if (!crow.ok()) return crow.status();
      if (!*crow) break;
      table.push_back(ColumnInfo{columns->Text(0), columns->Int(1) != 0,
                                 columns->Int(2) != 0});
    }
  }
  for (const char* required : {"caches", "entries", "storage",
                               "request_headers", "response_headers",
                               "response_url_list", "security_info"}) {
    if (!schema.HasTable(required)) {
      return absl::FailedPreconditionError(absl::StrCat(
          "not a Gecko Cache API database: no table `", required, "`"));
    }
  }
  return schema;
}

// SQL summing an entry's body disk sizes, for the schema at hand.
std::string BodyBytesExpression(const SchemaInfo& schema) {
  std::string sum;
  for (const char* column :
       {"request_body_disk_size", "response_body_disk_size"}) {
    if (!schema.HasColumn("entries", column)) continue;
    absl::StrAppend(&sum, sum.empty() ? "" : " + ", "ifnull(e.", column,
                    ", 0)");
  }
  return sum.empty() ? "0" : absl::StrCat("ifnull(sum(", sum, "), 0)");
}

std::string PaddedEntriesExpression(const SchemaInfo& schema) {
  return schema.HasColumn("entries", "response_padding_size")
             ? "count(e.response_padding_size)"
             : "0";
}

absl::StatusOr<std::vector<CacheSummary>> ListCachesInTransaction(
    sqlite3* db, const SchemaInfo& schema) {
  absl::StatusOr<Statement> st = Statement::Prepare(
      db, absl::StrCat(
              "SELECT s.namespace, s.key, s.cache_id, count(e.id), ",
              BodyBytesExpression(schema), ", ",
              PaddedEntriesExpression(schema),
              " FROM storage s LEFT JOIN entries e ON e.cache_id = s.cache_id"
              " GROUP BY s.namespace, s.key, s.cache_id"
              " ORDER BY s.namespace, s.key"));
  if (!st.ok()) return st.status();
  std::vector<CacheSummary> caches;
  for (;;) {
    absl::StatusOr<bool> row = st->Step();
    if (!row.ok()) return row.status();
    if (!*row) break;
    CacheSummary summary;
    summary.namespace_id = st->Int(0);
    SqlValue key = st->Value(1);
    // Gecko stores the empty name as NULL; a name that is not valid UTF-16
    // is shown with its bytes in hex, since no page could have made it.
    std::optional<std::string> name = Utf16LeToUtf8(key.bytes);
    summary.name = name ? *name : "<utf16:" + HexEncode(key.bytes) + ">";
    summary.cache_id = st->Int(2);
    summary.entry_count = st->Int(3);
    summary.body_bytes = st->Int(4);
    summary.padded_entries = st->Int(5);
    caches.push_back(std::move(summary));
  }
  return caches;
}

// Calls `add` with the position in `entries` and the row, for every row of
// `sql` (whose first column is entry_id, in rowid order) that belongs to one
// of `entries`. One pass per table: Gecko's schema has no index on
// request_headers.entry_id or response_url_list.entry_id, so a query per
// entry would scan the table once per entry (quadratic: a 10,000-entry
// cache, 10,000 scans).
absl::Status ForEachChildRow(
    sqlite3* db, const char* sql,
    const std::unordered_map<int64_t, size_t>& position,
    const std::function<void(size_t, const Statement&)>& add) {
  absl::StatusOr<Statement> st = Statement::Prepare(db, sql);
  if (!st.ok()) return st.status();
  for (;;) {
    absl::StatusOr<bool> row = st->Step();
    if (!row.ok()) return row.status();
    if (!*row) return absl::OkStatus();
    auto it = position.find(st->Int(0));
    if (it != position.end()) add(it->second, *st);
  }
}

absl::Status ReadSecurityInfo(sqlite3* db, int64_t id,
                              std::map<int64_t, SecurityInfo>& out) {
  if (out.count(id) != 0) return absl::OkStatus();
  absl::StatusOr<Statement> st = Statement::Prepare(
      db, "SELECT hash, data, refcount FROM security_info WHERE id = ?1");
  if (!st.ok()) return st.status();
  st->BindInt(1, id);
  absl::StatusOr<bool> row = st->Step();
  if (!row.ok()) return row.status();
  if (!*row) {
    return absl::DataLossError(
        absl::StrCat("an entry references security_info ", id,
                     ", which does not exist"));
  }
  out[id] = SecurityInfo{id, st->Value(0).bytes, st->Value(1).bytes,
                         st->Int(2)};
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<SchemaInfo> ReadSchema(sqlite3* db) {
  ReadTransaction transaction(db);
  if (absl::Status s = transaction.Begin(); !s.ok()) return s;
  return ReadSchemaInTransaction(db);
}

absl::StatusOr<std::vector<CacheSummary>> ListCaches(sqlite3* db) {
  ReadTransaction transaction(db);
  if (absl::Status s = transaction.Begin(); !s.ok()) return s;
  absl::StatusOr<SchemaInfo> schema = ReadSchemaInTransaction(db);
  if (!schema.ok()) return schema.status();
  return ListCachesInTransaction(db, *schema);
}

absl::StatusOr<LiveDatabase> ReadLiveDatabase(sqlite3* db) {
  ReadTransaction transaction(db);
  if (absl::Status s = transaction.Begin(); !s.ok()) return s;
  LiveDatabase live;
  absl::StatusOr<SchemaInfo> schema = ReadSchemaInTransaction(db);
  if (!schema.ok()) return schema.status();
  live.schema = *std::move(schema);
  absl::StatusOr<std::vector<CacheSummary>> caches =
      ListCachesInTransaction(db, live.schema);
  if (!caches.ok()) return caches.status();
  live.caches = *std::move(caches);
  absl::StatusOr<Statement> bodies = Statement::Prepare(
      db, "SELECT cache_id, request_body_id, response_body_id FROM entries");
  if (!bodies.ok()) return bodies.status();
  for (;;) {
    absl::StatusOr<bool> row = bodies->Step();
    if (!row.ok()) return row.status();
    if (!*row) break;
    for (int column : {1, 2}) {
      if (std::optional<std::string> path =
              MorguePathOfBodyId(bodies->Text(column))) {
        live.bodies_by_cache[bodies->Int(0)].push_back(*std::move(path));
      }
    }
  }
  return live;
}

absl::StatusOr<CacheContents> ReadCache(sqlite3* db, int64_t namespace_id,
                                        std::string_view name) {
  ReadTransaction transaction(db);
  if (absl::Status s = transaction.Begin(); !s.ok()) return s;
  absl::StatusOr<SchemaInfo> schema = ReadSchemaInTransaction(db);
  if (!schema.ok()) return schema.status();
  absl::StatusOr<std::vector<CacheSummary>> caches =
      ListCachesInTransaction(db, *schema);
  if (!caches.ok()) return caches.status();

  CacheContents contents;
  bool found = false;
  for (const CacheSummary& cache : *caches) {
    if (cache.namespace_id == namespace_id && cache.name == name) {
      contents.summary = cache;
      found = true;
    }
  }
  if (!found) {
    return absl::NotFoundError(absl::StrCat("no cache \"", std::string(name),
                                            "\" in namespace ", namespace_id));
  }

  absl::StatusOr<Statement> st = Statement::Prepare(
      db, "SELECT * FROM entries WHERE cache_id = ?1 ORDER BY id");
  if (!st.ok()) return st.status();
  st->BindInt(1, contents.summary.cache_id);
  for (;;) {
    absl::StatusOr<bool> row = st->Step();
    if (!row.ok()) return row.status();
    if (!*row) break;
    CacheEntry entry;
    for (int i = 0; i < sqlite3_column_count(st->get()); ++i) {
      std::string column = sqlite3_column_name(st->get(), i);
      if (column == "id") {
        entry.id = st->Int(i);
      } else if (column != "cache_id") {
        entry.columns[column] = st->Value(i);
      }
    }
    contents.entries.push_back(std::move(entry));
  }
  std::unordered_map<int64_t, size_t> position;
  for (size_t i = 0; i < contents.entries.size(); ++i) {
    position.emplace(contents.entries[i].id, i);
  }
  std::vector<CacheEntry>& entries = contents.entries;
  for (bool request : {true, false}) {
    absl::Status read = ForEachChildRow(
        db,
        request ? "SELECT entry_id, name, value FROM request_headers "
                  "ORDER BY rowid"
                : "SELECT entry_id, name, value FROM response_headers "
                  "ORDER BY rowid",
        position, [&](size_t i, const Statement& row) {
          (request ? entries[i].request_headers
                   : entries[i].response_headers)
              .push_back(Header{row.Text(1), row.Text(2)});
        });
    if (!read.ok()) return read;
  }
  if (absl::Status read = ForEachChildRow(
          db, "SELECT entry_id, url FROM response_url_list ORDER BY rowid",
          position,
          [&](size_t i, const Statement& row) {
            entries[i].response_url_list.push_back(row.Text(1));
          });
      !read.ok()) {
    return read;
  }
  for (CacheEntry& entry : entries) {
    if (std::optional<int64_t> security =
            entry.Integer("response_security_info_id")) {
      if (absl::Status s =
              ReadSecurityInfo(db, *security, contents.security_info);
          !s.ok()) {
        return s;
      }
    }
  }
  return contents;
}

}  // namespace quiesce::bundle
