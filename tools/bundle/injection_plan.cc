// PlanInjection: the SQL, parameters and body files that put a bundle's
// cache into a live caches.sqlite in short transactions of plain DML.
#include <cstdio>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "cache_bundle.h"
#include "digest.h"
#include "gecko_names.h"

namespace quiesce::bundle {

namespace {

// Columns of newer schemas that a bundle from an older one cannot fill,
// with the value Gecko gives them for an ordinary response (what a real
// Firefox wrote in the ESR 153 fixtures).
struct NewerColumn {
  const char* name;
  int64_t value;
};
constexpr NewerColumn kNewerColumns[] = {{"response_credentials", 0}};

// Assigns named parameters, one per distinct byte string.
class Parameters {
 public:
  std::string Blob(const std::string& bytes) {
    auto [it, added] = names_.try_emplace(bytes, "");
    if (added) {
      it->second = absl::StrCat(":p", names_.size());
      blobs_.emplace_back(it->second, bytes);
    }
    return it->second;
  }
  // Text travels as a blob too, so that a channel binding only blobs will
  // do; CAST gives it back its type (the database's encoding, UTF-8 here).
  std::string Text(const std::string& text) {
    return absl::StrCat("CAST(", Blob(text), " AS TEXT)");
  }
  std::string Value(const SqlValue& v) {
    switch (v.type) {
      case SqlValue::Type::kInteger:
        return std::to_string(v.integer);
      case SqlValue::Type::kReal: {
        char buffer[32];
        std::snprintf(buffer, sizeof buffer, "%.17g", v.real);
        return buffer;
      }
      case SqlValue::Type::kText:
        return Text(v.bytes);
      case SqlValue::Type::kBlob:
        return Blob(v.bytes);
      case SqlValue::Type::kNull:
        break;
    }
    return "NULL";
  }
  std::vector<std::pair<std::string, std::string>> Take() {
    return std::move(blobs_);
  }

 private:
  std::map<std::string, std::string> names_;
  std::vector<std::pair<std::string, std::string>> blobs_;
};

const CacheSummary* FindCache(const LiveDatabase& live, int64_t namespace_id,
                              const std::string& name) {
  for (const CacheSummary& cache : live.caches) {
    if (cache.namespace_id == namespace_id && cache.name == name) return &cache;
  }
  return nullptr;
}

absl::Status CheckLiveSchema(const SchemaInfo& schema) {
  for (const char* table :
       {"caches", "entries", "storage", "request_headers", "response_headers",
        "response_url_list", "security_info"}) {
    if (!schema.HasTable(table)) {
      return absl::FailedPreconditionError(absl::StrCat(
          "the live database is not a Gecko Cache API database: no table ",
          table));
    }
  }
  // usage_info is kept right by Gecko's triggers on entries; without them
  // the inserts below would leave it wrong.
  if (schema.HasTable("usage_info")) {
    for (const char* trigger :
         {"entries_insert_trigger", "entries_delete_trigger"}) {
      if (schema.triggers.count(trigger) == 0) {
        return absl::UnimplementedError(absl::StrCat(
            "the live database has usage_info but no ", trigger));
      }
    }
  }
  return absl::OkStatus();
}

absl::Status CheckInjectable(const BundleEntry& e) {
  const CacheEntry& entry = e.entry;
  auto padding = entry.columns.find("response_padding_size");
  if (entry.Integer("response_type") == kResponseTypeOpaque ||
      (padding != entry.columns.end() && !padding->second.is_null())) {
    return absl::FailedPreconditionError(absl::StrCat(
        "the bundle holds an opaque response (", entry.RequestUrl(),
        "): its padding cannot be kept right from outside Gecko"));
  }
  return absl::OkStatus();
}

// The SQL of one column value of an injected entry.
struct EntryContext {
  const BundleEntry* entry;
  std::optional<StagedBody> request_body, response_body;
  std::string security_id_sql;  // "NULL" or a subquery
  std::string cache_id_sql;
};

std::optional<std::string> ColumnSql(const std::string& column,
                                     const EntryContext& c, Parameters& p) {
  const CacheEntry& entry = c.entry->entry;
  if (column == "cache_id") return c.cache_id_sql;
  if (column == "request_url_no_query_hash") {
    return p.Blob(GeckoHash(entry.Text("request_url_no_query")));
  }
  if (column == "request_url_query_hash") {
    return p.Blob(GeckoHash(entry.Text("request_url_query")));
  }
  if (column == "response_security_info_id") return c.security_id_sql;
  for (bool request : {true, false}) {
    std::string prefix = request ? "request" : "response";
    const std::optional<StagedBody>& body =
        request ? c.request_body : c.response_body;
    if (column == prefix + "_body_id") {
      return body ? p.Text(body->body_id) : "NULL";
    }
    if (column == prefix + "_body_disk_size" && body) {
      return std::to_string(body->size);
    }
  }
  auto it = entry.columns.find(column);
  if (it != entry.columns.end()) return p.Value(it->second);
  return std::nullopt;
}

int64_t RowsOf(const BundleEntry& e) {
  return 1 + static_cast<int64_t>(e.entry.request_headers.size() +
                                  e.entry.response_headers.size() +
                                  e.entry.response_url_list.size());
}

// Statements that delete the entries of the cache that `cache_id` (SQL)
// names, with their headers, URL lists and security_info references.
std::vector<std::string> DeleteEntriesSql(const std::string& cache_id) {
  std::vector<std::string> sql;
  sql.push_back(absl::StrCat(
      "UPDATE security_info SET refcount = refcount - (SELECT count(*) "
      "FROM entries e WHERE e.response_security_info_id = security_info.id "
      "AND e.cache_id = ", cache_id, ") WHERE id IN (SELECT "
      "response_security_info_id FROM entries WHERE cache_id = ", cache_id,
      ")"));
  // Headers and URL lists would go with their entries by ON DELETE
  // CASCADE, but only on a connection with foreign_keys on: delete them
  // explicitly. usage_info follows through entries_delete_trigger.
  for (const char* table :
       {"request_headers", "response_headers", "response_url_list"}) {
    sql.push_back(absl::StrCat("DELETE FROM ", table,
                               " WHERE entry_id IN (SELECT id FROM entries "
                               "WHERE cache_id = ", cache_id, ")"));
  }
  sql.push_back(absl::StrCat("DELETE FROM entries WHERE cache_id = ", cache_id));
  sql.push_back(
      "DELETE FROM security_info WHERE refcount <= 0 AND id NOT IN (SELECT "
      "response_security_info_id FROM entries WHERE "
      "response_security_info_id IS NOT NULL)");
  return sql;
}

// One step being written: its statements and parameters.
struct StepWriter {
  Parameters p;
  std::vector<std::string> sql;
  int64_t entries = 0;
  PlanStep Take() {
    PlanStep step{absl::StrCat(absl::StrJoin(sql, ";\n"), ";\n"), p.Take(),
                  entries};
    return step;
  }
};

// Writes the statements of a run of entries into `w`: the security info
// they use (deduplicated the way Gecko does it, by hash and data; each
// step counts its own references, so that a step that commits alone
// leaves the refcounts right), then each entry with its headers and URL
// list. Body ids are assigned here and added to plan->bodies.
absl::Status WriteEntries(const Bundle& bundle, const LiveDatabase& live,
                          const std::vector<const BundleEntry*>& entries,
                          const std::string& cache_id, StepWriter& w,
                          InjectionPlan* plan) {
  Parameters& p = w.p;
  std::map<int64_t, int64_t> security_uses;
  for (const BundleEntry* e : entries) {
    if (std::optional<int64_t> id =
            e->entry.Integer("response_security_info_id")) {
      security_uses[*id]++;
    }
  }
  std::map<int64_t, std::string> security_id_sql;
  for (const auto& [id, uses] : security_uses) {
    const SecurityInfo& info = bundle.security_info().at(id);
    std::string match = absl::StrCat("hash = ", p.Blob(GeckoHash(info.data)),
                                     " AND data = ", p.Blob(info.data));
    w.sql.push_back(absl::StrCat(
        "INSERT INTO security_info (hash, data, refcount) SELECT ",
        p.Blob(GeckoHash(info.data)), ", ", p.Blob(info.data),
        ", 0 WHERE NOT EXISTS (SELECT 1 FROM security_info WHERE ", match,
        ")"));
    security_id_sql[id] =
        absl::StrCat("(SELECT min(id) FROM security_info WHERE ", match, ")");
    w.sql.push_back(absl::StrCat(
        "UPDATE security_info SET refcount = refcount + ", uses,
        " WHERE id = ", security_id_sql[id]));
  }

  const std::vector<ColumnInfo>& live_columns = *live.schema.Columns("entries");
  for (const BundleEntry* e : entries) {
    EntryContext c{e, std::nullopt, std::nullopt, "NULL", cache_id};
    for (bool request : {true, false}) {
      const std::optional<BodyPart>& part =
          request ? e->request_body : e->response_body;
      if (!part) continue;
      std::optional<std::string> id = NewBodyId();
      if (!id) return absl::InternalError("no randomness for new body ids");
      StagedBody staged{part->part, *id, *MorguePathOfBodyId(*id),
                        part->size};
      plan->bodies.push_back(staged);
      (request ? c.request_body : c.response_body) = staged;
    }
    if (std::optional<int64_t> id =
            e->entry.Integer("response_security_info_id")) {
      c.security_id_sql = security_id_sql[*id];
    }
    std::vector<std::string> names, values;
    for (const ColumnInfo& column : live_columns) {
      if (column.name == "id") continue;  // Gecko's rowid: max + 1
      std::optional<std::string> value = ColumnSql(column.name, c, p);
      for (const NewerColumn& newer : kNewerColumns) {
        if (!value && column.name == newer.name) {
          value = std::to_string(newer.value);
        }
      }
      if (!value && column.not_null && !column.has_default) {
        return absl::FailedPreconditionError(absl::StrCat(
            "the live schema (version ", live.schema.user_version,
            ") needs entries.", column.name, ", which the bundle (schema ",
            bundle.meta().schema_version, ") does not have"));
      }
      if (!value) continue;
      names.push_back(column.name);
      values.push_back(*value);
    }
    w.sql.push_back(absl::StrCat("INSERT INTO entries (",
                                 absl::StrJoin(names, ", "), ") VALUES (",
                                 absl::StrJoin(values, ", "), ")"));
    ++w.entries;
    // The entry just inserted has the largest id: Gecko's entries.id is a
    // plain rowid, and the transaction is the database's only writer.
    const std::string entry_id = "(SELECT max(id) FROM entries)";
    for (bool request : {true, false}) {
      const std::vector<Header>& headers =
          request ? e->entry.request_headers : e->entry.response_headers;
      if (headers.empty()) continue;
      std::vector<std::string> rows;
      rows.reserve(headers.size());
      for (const Header& h : headers) {
        rows.push_back(absl::StrCat("(", p.Text(h.name), ", ", p.Text(h.value),
                                    ", ", entry_id, ")"));
      }
      w.sql.push_back(absl::StrCat(
          "INSERT INTO ", request ? "request_headers" : "response_headers",
          " (name, value, entry_id) VALUES ", absl::StrJoin(rows, ", ")));
    }
    if (!e->entry.response_url_list.empty()) {
      std::vector<std::string> rows;
      for (const std::string& url : e->entry.response_url_list) {
        rows.push_back(absl::StrCat("(", p.Text(url), ", ", entry_id, ")"));
      }
      w.sql.push_back(absl::StrCat(
          "INSERT INTO response_url_list (url, entry_id) VALUES ",
          absl::StrJoin(rows, ", ")));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<InjectionPlan> PlanInjection(const Bundle& bundle,
                                            const LiveDatabase& live,
                                            const InjectOptions& options) {
  if (absl::Status s = CheckLiveSchema(live.schema); !s.ok()) return s;
  for (const BundleEntry& e : bundle.entries()) {
    if (absl::Status s = CheckInjectable(e); !s.ok()) return s;
  }
  InjectionPlan plan;
  plan.cache_name = options.rename.value_or(bundle.meta().name);
  plan.namespace_id = bundle.meta().namespace_id;
  plan.entry_count = static_cast<int64_t>(bundle.entries().size());
  if (plan.cache_name.empty()) {
    return absl::InvalidArgumentError(
        "a cache without a name cannot be injected");
  }
  std::optional<std::string> key = Utf8ToUtf16Le(plan.cache_name);
  if (!key) {
    return absl::InvalidArgumentError("the cache name is not valid UTF-8");
  }
  const CacheSummary* existing =
      FindCache(live, plan.namespace_id, plan.cache_name);
  if (existing != nullptr && !options.overwrite) {
    return absl::FailedPreconditionError(absl::StrCat(
        "the live database already has a cache \"", plan.cache_name,
        "\": rename the injected one, or overwrite it"));
  }
  if (existing != nullptr && existing->padded_entries > 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        "the cache \"", plan.cache_name, "\" holds opaque responses: "
        "deleting them would leave the origin's padding wrong"));
  }
  if (existing != nullptr) {
    auto bodies = live.bodies_by_cache.find(existing->cache_id);
    if (bodies != live.bodies_by_cache.end()) {
      plan.orphaned_bodies = bodies->second;
    }
  }
  std::set<std::string> dropped;
  for (const BundleEntry& e : bundle.entries()) {
    for (const auto& [column, value] : e.entry.columns) {
      if (!live.schema.HasColumn("entries", column)) dropped.insert(column);
    }
  }
  plan.dropped_columns.assign(dropped.begin(), dropped.end());
  const std::string ns = std::to_string(plan.namespace_id);

  if (options.overwrite) {
    // One step, written to work whether or not the cache exists when it
    // runs: the live state may have moved since the snapshot the plan was
    // made from.
    StepWriter w;
    const std::string storage_match =
        absl::StrCat("namespace = ", ns, " AND key = ", w.p.Blob(*key));
    const std::string cache_id = absl::StrCat(
        "(SELECT cache_id FROM storage WHERE ", storage_match, ")");
    w.sql = DeleteEntriesSql(cache_id);
    const std::string absent = absl::StrCat(
        "NOT EXISTS (SELECT 1 FROM storage WHERE ", storage_match, ")");
    w.sql.push_back(
        absl::StrCat("INSERT INTO caches (id) SELECT NULL WHERE ", absent));
    w.sql.push_back(absl::StrCat(
        "INSERT INTO storage (namespace, key, cache_id) SELECT ", ns, ", ",
        w.p.Blob(*key), ", last_insert_rowid() WHERE ", absent));
    std::vector<const BundleEntry*> all;
    for (const BundleEntry& e : bundle.entries()) all.push_back(&e);
    if (auto s = WriteEntries(bundle, live, all, cache_id, w, &plan);
        !s.ok()) {
      return s;
    }
    plan.steps.push_back(w.Take());
    return plan;
  }

  plan.fills_new_cache = true;
  plan.steps.push_back({"INSERT INTO caches DEFAULT VALUES;\n", {}, 0});
  const std::string cache_id =
      absl::StrCat("CAST(", kCacheIdParameter, " AS INTEGER)");
  std::vector<const BundleEntry*> run;
  int64_t rows = 0;
  auto flush = [&]() -> absl::Status {
    if (run.empty()) return absl::OkStatus();
    StepWriter w;
    if (auto s = WriteEntries(bundle, live, run, cache_id, w, &plan);
        !s.ok()) {
      return s;
    }
    plan.steps.push_back(w.Take());
    run.clear();
    rows = 0;
    return absl::OkStatus();
  };
  for (const BundleEntry& e : bundle.entries()) {
    run.push_back(&e);
    rows += RowsOf(e);
    if (rows >= options.rows_per_step) {
      if (auto s = flush(); !s.ok()) return s;
    }
  }
  if (auto s = flush(); !s.ok()) return s;
  // Published: a cache of that name made since the snapshot fails this
  // step (the storage primary key), and the fill is deleted.
  StepWriter publish;
  publish.sql.push_back(absl::StrCat(
      "INSERT INTO storage (namespace, key, cache_id) VALUES (", ns, ", ",
      publish.p.Blob(*key), ", ", cache_id, ")"));
  plan.steps.push_back(publish.Take());
  return plan;
}

std::string DeleteUnpublishedCacheSql(int64_t cache_id) {
  const std::string unpublished = absl::StrCat(
      "(SELECT id FROM caches WHERE id = ", cache_id,
      " AND id NOT IN (SELECT cache_id FROM storage))");
  std::vector<std::string> sql = DeleteEntriesSql(unpublished);
  sql.push_back(absl::StrCat("DELETE FROM caches WHERE id = ", unpublished));
  return absl::StrCat(absl::StrJoin(sql, ";\n"), ";\n");
}

}  // namespace quiesce::bundle
