#include "bundle_staging.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>

#include "bundle_command_parts.h"
#include "bundle_point.h"
#include "cache_bundle.h"
#include "exit_codes.h"
#include "gecko_names.h"
#include "inject_staging.h"

namespace quiesce::ctl {
namespace {

namespace fs = std::filesystem;

bool SyncPath(const fs::path& path, int flags) {
  const int fd = open(path.c_str(), flags | O_CLOEXEC);
  if (fd < 0) return false;
  const bool ok = fsync(fd) == 0;
  close(fd);
  return ok;
}

}  // namespace

bool WriteStagingManifest(const fs::path& dir,
                          const StagingManifest& manifest, Failure* failure) {
  if (manifest.cache_dir.find('\n') != std::string::npos) {
    failure->exit_code = kExitFailure;
    failure->message = "cannot stage for " + manifest.cache_dir +
                       ": its path has a newline";
    return false;
  }
  const fs::path tmp = dir / (std::string(kStagingManifestName) + ".tmp");
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << FormatStagingManifest(manifest);
    out.close();
    if (!out.good()) {
      failure->exit_code = kExitFailure;
      failure->message = "cannot write " + tmp.string();
      return false;
    }
  }
  if (!SyncPath(tmp, O_RDONLY) ||
      rename(tmp.c_str(), (dir / kStagingManifestName).c_str()) != 0 ||
      !SyncPath(dir, O_RDONLY | O_DIRECTORY)) {
    failure->exit_code = kExitFailure;
    failure->message = "cannot write the staging manifest in " + dir.string() +
                       ": " + std::strerror(errno);
    return false;
  }
  return true;
}

bool DeleteDeadFills(LiveOrigin& live, Failure* failure) {
  for (const int64_t id : DeadFills(live.cache_dir())) {
    InjectFiles files;
    files.sql_path = live.Scratch("delete-dead-fill.sql").string();
    {
      std::ofstream out(files.sql_path, std::ios::binary | std::ios::trunc);
      out << bundle::DeleteUnpublishedCacheSql(id);
      out.close();
      if (!out.good()) {
        *failure = {kExitFailure, "cannot write " + files.sql_path};
        return false;
      }
    }
    control::json result;
    if (!InjectFromFiles(live.client(), live.db_path(), files, &result,
                         failure)) {
      failure->message = "removing what a dead injection left: " +
                         failure->message;
      return false;
    }
  }
  return true;
}

std::set<std::string> ReferencedBodies(sqlite3* image) {
  std::set<std::string> out;
  static const char kSql[] =
      "SELECT request_body_id FROM entries WHERE request_body_id IS NOT NULL "
      "UNION SELECT response_body_id FROM entries "
      "WHERE response_body_id IS NOT NULL";
  sqlite3_stmt* st = nullptr;
  if (sqlite3_prepare_v2(image, kSql, -1, &st, nullptr) == SQLITE_OK) {
    while (sqlite3_step(st) == SQLITE_ROW) {
      const unsigned char* t = sqlite3_column_text(st, 0);
      if (!t) continue;
      if (bundle::IsBodyId(reinterpret_cast<const char*>(t))) {
        out.emplace(reinterpret_cast<const char*>(t));
      }
    }
  }
  sqlite3_finalize(st);
  return out;
}

std::set<int64_t> UnpublishedCaches(sqlite3* image) {
  std::set<int64_t> out;
  sqlite3_stmt* st = nullptr;
  if (sqlite3_prepare_v2(image,
                         "SELECT id FROM caches WHERE id NOT IN "
                         "(SELECT cache_id FROM storage)",
                         -1, &st, nullptr) == SQLITE_OK) {
    while (sqlite3_step(st) == SQLITE_ROW) {
      out.insert(sqlite3_column_int64(st, 0));
    }
  }
  sqlite3_finalize(st);
  return out;
}

}  // namespace quiesce::ctl

namespace quiesce::ctl {

// quiescectl bundle recover --profile DIR: the browser is stopped; each
// staging directory left by a dead injection names its cache directory;
// its rows are read from caches.sqlite itself (exclusive locking: no -shm
// file is made, and a running browser's lock makes it fail, not wait).
int BundleRecover(const BundleArgs& args) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::path profile = fs::canonical(args.profile, ec);
  if (ec) {
    return ReportFailure({kExitUsage, "--profile " + args.profile + ": " +
                                          ec.message()});
  }
  const fs::path root = profile / "quiesce-staging";
  std::set<std::string> cache_dirs;
  for (fs::directory_iterator it(root, ec), end; !ec && it != end;
       it.increment(ec)) {
    if (!IsDeadInjection(it->path().filename().native())) continue;
    const auto manifest = ReadStagingManifest(it->path());
    cache_dirs.insert(manifest ? manifest->cache_dir : "");
  }
  Recovery total;
  for (const std::string& dir : cache_dirs) {
    std::set<std::string> referenced;
    if (!dir.empty()) {
      // Only cache directories inside this profile.
      const fs::path cache_dir = fs::weakly_canonical(dir, ec);
      const std::string p = profile.string() + "/storage/";
      if (ec || cache_dir.string().rfind(p, 0) != 0) continue;
      sqlite3* db = nullptr;
      const fs::path db_path = cache_dir / "caches.sqlite";
      int rc = sqlite3_open_v2(db_path.c_str(), &db, SQLITE_OPEN_READWRITE,
                               nullptr);
      // Unpublished fills are deleted first, so that their bodies are
      // unreferenced when the rows are read.
      std::string sql =
          "PRAGMA locking_mode=EXCLUSIVE; BEGIN IMMEDIATE; "
          "SELECT count(*) FROM entries;";
      for (const int64_t id : DeadFills(cache_dir)) {
        sql += bundle::DeleteUnpublishedCacheSql(id);
      }
      sql += "COMMIT";
      if (rc == SQLITE_OK) {
        rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr);
      }
      if (rc != SQLITE_OK) {
        const std::string why = db ? sqlite3_errmsg(db) : "out of memory";
        sqlite3_close(db);
        return ReportFailure(
            {rc == SQLITE_BUSY ? kExitBusy : kExitFailure,
             "cannot read " + db_path.string() + ": " + why +
                 (rc == SQLITE_BUSY ? " (is the browser running? stop it, or "
                                      "run bundle inject or pack against it)"
                                    : "")});
      }
      referenced = ReferencedBodies(db);
      const std::set<int64_t> unpublished = UnpublishedCaches(db);
      sqlite3_close(db);
      const Recovery r =
          RecoverStaging(cache_dir, referenced, Readers::kNone, unpublished);
      total.directories += r.directories;
      total.bodies_removed += r.bodies_removed;
      total.bodies_kept += r.bodies_kept;
    } else {
      // Directories without a manifest: nothing reached morgue/.
      for (fs::directory_iterator it(root, ec), end; !ec && it != end;
           it.increment(ec)) {
        if (!IsDeadInjection(it->path().filename().native()) ||
            ReadStagingManifest(it->path())) {
          continue;
        }
        std::error_code ignored;
        fs::remove_all(it->path(), ignored);
        ++total.directories;
      }
    }
  }
  if (args.json) {
    PrintJson({{"profile", profile.string()},
               {"directories", total.directories},
               {"bodies_removed", total.bodies_removed},
               {"bodies_kept", total.bodies_kept}});
  } else {
    std::printf("%s: %d staging director%s of dead injections cleaned up, "
                "%d unreferenced bodies removed from morgue/, %d kept (their "
                "injection committed)\n",
                profile.string().c_str(), total.directories,
                total.directories == 1 ? "y" : "ies", total.bodies_removed,
                total.bodies_kept);
  }
  return kExitOk;
}

}  // namespace quiesce::ctl
