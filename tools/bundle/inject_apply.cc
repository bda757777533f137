// Carrying out an injection plan: body files into the morgue, and (for
// offline databases and tests) the SQL with plain SQLite.
#include <sqlite3.h>
#include <stdio.h>

#include <cerrno>
#include <cstring>
#include <system_error>

#include "absl/strings/str_cat.h"
#include "cache_bundle.h"
#include "sqlite_statement.h"

namespace quiesce::bundle {

absl::Status StageBodies(const Bundle& bundle, const InjectionPlan& plan,
                         const std::filesystem::path& cache_dir) {
  for (size_t i = 0; i < plan.bodies.size(); ++i) {
    const StagedBody& body = plan.bodies[i];
    std::filesystem::path final_path = cache_dir / body.morgue_path;
    std::filesystem::path tmp_path = final_path;
    // Gecko's own name for a body being written: a stale one is cleaned up
    // by Gecko like its own.
    tmp_path.replace_extension(".tmp");
    std::error_code error;
    std::filesystem::create_directories(final_path.parent_path(), error);
    absl::Status status =
        error ? absl::InternalError(absl::StrCat(
                    "cannot create ", final_path.parent_path().string(), ": ",
                    error.message()))
              : bundle.ExtractPart(body.part, tmp_path);
    if (status.ok() && rename(tmp_path.c_str(), final_path.c_str()) != 0) {
      status = absl::InternalError(absl::StrCat(
          "cannot rename to ", final_path.string(), ": ", std::strerror(errno)));
      std::filesystem::remove(tmp_path, error);
    }
    if (!status.ok()) {
      InjectionPlan written;
      written.bodies.assign(plan.bodies.begin(), plan.bodies.begin() + i);
      UnstageBodies(written, cache_dir);
      return status;
    }
  }
  return absl::OkStatus();
}

void UnstageBodies(const InjectionPlan& plan,
                   const std::filesystem::path& cache_dir) {
  for (const StagedBody& body : plan.bodies) {
    std::error_code ignored;
    std::filesystem::remove(cache_dir / body.morgue_path, ignored);
  }
}

namespace {

absl::Status RunStatements(
    sqlite3* db, const std::string& sql,
    const std::map<std::string, const std::string*>& blobs) {
  const char* tail = sql.c_str();
  while (*tail != '\0') {
    sqlite3_stmt* raw = nullptr;
    const char* next = nullptr;
    if (sqlite3_prepare_v2(db, tail, -1, &raw, &next) != SQLITE_OK) {
      sqlite3_finalize(raw);
      return SqliteError(db, "cannot prepare the injection");
    }
    tail = next;
    if (raw == nullptr) continue;  // whitespace after the last statement
    for (int i = 1; i <= sqlite3_bind_parameter_count(raw); ++i) {
      const char* name = sqlite3_bind_parameter_name(raw, i);
      auto it = name == nullptr ? blobs.end() : blobs.find(name);
      if (it == blobs.end()) {
        sqlite3_finalize(raw);
        return absl::InternalError(absl::StrCat(
            "the plan has no value for parameter ", name ? name : "?"));
      }
      sqlite3_bind_blob(raw, i, it->second->data(),
                        static_cast<int>(it->second->size()), SQLITE_STATIC);
    }
    int rc = sqlite3_step(raw);
    sqlite3_finalize(raw);
    if (rc != SQLITE_DONE) return SqliteError(db, "the injection failed");
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ExecuteStep(sqlite3* db, const PlanStep& step,
                         const std::string& cache_id) {
  std::map<std::string, const std::string*> blobs;
  for (const auto& [name, bytes] : step.blobs) blobs[name] = &bytes;
  blobs[kCacheIdParameter] = &cache_id;
  return RunStatements(db, step.sql, blobs);
}

absl::Status ExecutePlan(sqlite3* db, const InjectionPlan& plan) {
  if (sqlite3_exec(db, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr) !=
      SQLITE_OK) {
    return SqliteError(db, "cannot begin the injection");
  }
  absl::Status status;
  std::string cache_id;
  for (size_t i = 0; status.ok() && i < plan.steps.size(); ++i) {
    status = ExecuteStep(db, plan.steps[i], cache_id);
    if (plan.fills_new_cache && i == 0) {
      cache_id = std::to_string(sqlite3_last_insert_rowid(db));
    }
  }
  if (status.ok() &&
      sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr) != SQLITE_OK) {
    status = SqliteError(db, "cannot commit the injection");
  }
  if (!status.ok()) sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
  return status;
}

}  // namespace quiesce::bundle
