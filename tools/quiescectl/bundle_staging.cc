#include "bundle_staging.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>

#include "bundle_point.h"
#include "exit_codes.h"
#include "gecko_names.h"

namespace quiesce::ctl {
namespace {

namespace fs = std::filesystem;

constexpr char kManifest[] = "manifest.json";
constexpr char kPrefix[] = "inject-";

bool SyncPath(const fs::path& path, int flags) {
  const int fd = open(path.c_str(), flags | O_CLOEXEC);
  if (fd < 0) return false;
  const bool ok = fsync(fd) == 0;
  close(fd);
  return ok;
}

// Whether the process that owns a staging directory (by its name) is gone.
bool OwnerGone(const std::string& name) {
  const long pid = std::strtol(name.c_str() + std::strlen(kPrefix), nullptr, 10);
  if (pid <= 0) return true;
  if (pid == getpid()) return false;
  return kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH;
}

}  // namespace

bool WriteStagingManifest(const fs::path& dir, const fs::path& cache_dir,
                          const std::vector<std::string>& body_ids,
                          Failure* failure) {
  const json manifest = {{"format", "quiesce-inject-staging"},
                         {"cache_dir", cache_dir.string()},
                         {"body_ids", body_ids}};
  const fs::path tmp = dir / (std::string(kManifest) + ".tmp");
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << manifest.dump();
    out.close();
    if (!out.good()) {
      failure->exit_code = kExitFailure;
      failure->message = "cannot write " + tmp.string();
      return false;
    }
  }
  if (!SyncPath(tmp, O_RDONLY) ||
      rename(tmp.c_str(), (dir / kManifest).c_str()) != 0 ||
      !SyncPath(dir, O_RDONLY | O_DIRECTORY)) {
    failure->exit_code = kExitFailure;
    failure->message = "cannot write the staging manifest in " + dir.string() +
                       ": " + std::strerror(errno);
    return false;
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
      if (auto rel = bundle::MorguePathOfBodyId(
              reinterpret_cast<const char*>(t))) {
        out.insert(*rel);
      }
    }
  }
  sqlite3_finalize(st);
  return out;
}

bool NeedsRecovery(const fs::path& cache_dir) {
  std::error_code ec;
  for (fs::directory_iterator it(StagingRoot(cache_dir), ec), end;
       !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.rfind(kPrefix, 0) == 0 && OwnerGone(name)) return true;
  }
  return false;
}

Recovery RecoverStaging(const fs::path& cache_dir,
                        const std::set<std::string>& referenced) {
  Recovery r;
  const fs::path root = StagingRoot(cache_dir);
  std::error_code ec;
  std::vector<fs::path> dirs;
  for (fs::directory_iterator it(root, ec), end; !ec && it != end;
       it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.rfind(kPrefix, 0) == 0 && OwnerGone(name)) {
      dirs.push_back(it->path());
    }
  }
  for (const fs::path& dir : dirs) {
    json manifest;
    {
      std::ifstream in(dir / kManifest);
      if (in) {
        manifest = json::parse(std::string(std::istreambuf_iterator<char>(in),
                                           {}),
                               nullptr, false);
      }
    }
    if (manifest.is_object() &&
        manifest.value("cache_dir", "") != cache_dir.string()) {
      continue;  // another origin's: checked against its own rows
    }
    // No manifest: nothing was moved into morgue/ yet (it is written
    // before the first rename).
    if (manifest.is_object()) {
      for (const json& id : manifest.value("body_ids", json::array())) {
        if (!id.is_string()) continue;
        const auto rel = bundle::MorguePathOfBodyId(id.get<std::string>());
        if (!rel) continue;  // never a path to follow
        if (referenced.count(*rel)) {
          ++r.bodies_kept;
          continue;
        }
        std::error_code ignored;
        if (fs::remove(cache_dir / *rel, ignored)) ++r.bodies_removed;
      }
    }
    std::error_code ignored;
    fs::remove_all(dir, ignored);
    ++r.directories;
  }
  return r;
}

}  // namespace quiesce::ctl
