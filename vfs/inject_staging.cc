#include "inject_staging.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "gecko_body_id.h"

namespace quiesce {
namespace {

namespace fs = std::filesystem;

// Version 3 added the fill line; a version 2 manifest has none.
constexpr std::string_view kHeader = "quiesce-inject-staging 3";
constexpr std::string_view kHeaderV2 = "quiesce-inject-staging 2";
constexpr std::string_view kCacheDirKey = "cache_dir ";
constexpr std::string_view kFillKey = "fill_cache ";
constexpr std::string_view kReplacedKey = "replaced ";
// A manifest of 100,000 bodies is 4 MB; anything past this is not ours.
constexpr size_t kMaxManifestBytes = 16 << 20;

std::optional<std::string> ReadSmallFile(const fs::path& path) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  std::string text;
  char buffer[65536];
  for (;;) {
    const ssize_t n = read(fd, buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0 || text.size() + static_cast<size_t>(n) > kMaxManifestBytes) {
      close(fd);
      if (n == 0) return text;
      return std::nullopt;
    }
    text.append(buffer, static_cast<size_t>(n));
  }
}

template <typename Visit>
void ForEachDeadInjection(const fs::path& root, Visit visit) {
  std::error_code ec;
  std::vector<fs::path> dirs;
  for (fs::directory_iterator it(root, ec), end; !ec && it != end;
       it.increment(ec)) {
    if (IsDeadInjection(it->path().filename().native())) {
      dirs.push_back(it->path());
    }
  }
  for (const fs::path& dir : dirs) visit(dir);
}

}  // namespace

fs::path StagingRoot(const fs::path& cache_dir) {
  const fs::path origin = cache_dir.parent_path();
  const fs::path type = origin.parent_path();
  const fs::path storage = type.parent_path();
  if (cache_dir.filename() == "cache" && storage.filename() == "storage") {
    return storage.parent_path() / "quiesce-staging";
  }
  return type / "quiesce-staging";
}

bool IsDeadInjection(std::string_view dir_name) {
  const std::string_view prefix = kInjectStagingPrefix;
  if (dir_name.substr(0, prefix.size()) != prefix) return false;
  const std::string rest(dir_name.substr(prefix.size()));
  const long pid = std::strtol(rest.c_str(), nullptr, 10);
  if (pid <= 0) return true;  // not a name an injection makes: stale
  if (pid == getpid()) return false;
  return kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH;
}

std::string FormatStagingManifest(const StagingManifest& manifest) {
  std::string text(kHeader);
  text += '\n';
  text += kCacheDirKey;
  text += manifest.cache_dir;
  text += '\n';
  if (manifest.fill_cache_id > 0) {
    text += kFillKey;
    text += std::to_string(manifest.fill_cache_id) + '\n';
  }
  for (const std::string& id : manifest.body_ids) text += id + '\n';
  for (const std::string& id : manifest.replaced_ids) {
    text += kReplacedKey;
    text += id + '\n';
  }
  return text;
}

std::optional<StagingManifest> ParseStagingManifest(std::string_view text) {
  StagingManifest manifest;
  int line_number = 0;
  while (!text.empty()) {
    const size_t end = text.find('\n');
    if (end == std::string_view::npos) return std::nullopt;  // cut short
    const std::string_view line = text.substr(0, end);
    text.remove_prefix(end + 1);
    ++line_number;
    if (line_number == 1) {
      if (line != kHeader && line != kHeaderV2) return std::nullopt;
    } else if (line_number == 2) {
      if (line.substr(0, kCacheDirKey.size()) != kCacheDirKey) {
        return std::nullopt;
      }
      manifest.cache_dir = line.substr(kCacheDirKey.size());
      if (manifest.cache_dir.empty()) return std::nullopt;
    } else if (line.substr(0, kFillKey.size()) == kFillKey &&
               manifest.fill_cache_id == 0) {
      const std::string digits(line.substr(kFillKey.size()));
      char* end = nullptr;
      errno = 0;
      const long long id = std::strtoll(digits.c_str(), &end, 10);
      if (digits.empty() || digits[0] == '-' || *end != '\0' ||
          errno != 0 || id <= 0) {
        return std::nullopt;
      }
      manifest.fill_cache_id = id;
    } else if (line.substr(0, kReplacedKey.size()) == kReplacedKey) {
      const std::string_view id = line.substr(kReplacedKey.size());
      if (!IsBodyId(id)) return std::nullopt;
      manifest.replaced_ids.emplace_back(id);
    } else {
      if (!IsBodyId(line)) return std::nullopt;
      manifest.body_ids.emplace_back(line);
    }
  }
  if (line_number < 2) return std::nullopt;
  return manifest;
}

std::optional<StagingManifest> ReadStagingManifest(const fs::path& dir) {
  const std::optional<std::string> text =
      ReadSmallFile(dir / kStagingManifestName);
  if (!text) return std::nullopt;
  return ParseStagingManifest(*text);
}

bool NeedsRecovery(const fs::path& cache_dir) {
  bool needed = false;
  ForEachDeadInjection(StagingRoot(cache_dir), [&](const fs::path& dir) {
    const auto manifest = ReadStagingManifest(dir);
    if (!manifest || manifest->cache_dir == cache_dir.native()) needed = true;
  });
  return needed;
}

std::vector<int64_t> DeadFills(const fs::path& cache_dir) {
  std::vector<int64_t> ids;
  ForEachDeadInjection(StagingRoot(cache_dir), [&](const fs::path& dir) {
    const auto manifest = ReadStagingManifest(dir);
    if (manifest && manifest->cache_dir == cache_dir.native() &&
        manifest->fill_cache_id > 0) {
      ids.push_back(manifest->fill_cache_id);
    }
  });
  return ids;
}

Recovery RecoverStaging(const fs::path& cache_dir,
                        const std::set<std::string>& referenced_ids,
                        Readers readers,
                        const std::set<int64_t>& unpublished_caches) {
  Recovery r;
  ForEachDeadInjection(StagingRoot(cache_dir), [&](const fs::path& dir) {
    const auto manifest = ReadStagingManifest(dir);
    // Without a manifest nothing was moved into morgue/ yet: it is
    // written before the first rename.
    bool waiting = false;
    if (manifest) {
      if (manifest->cache_dir != cache_dir.native()) return;
      auto remove = [&](const std::string& id) {
        std::error_code ignored;
        if (fs::remove(cache_dir / *MorguePathOfBodyId(id), ignored)) {
          ++r.bodies_removed;
        }
      };
      int kept = 0;
      for (const std::string& id : manifest->body_ids) {
        if (referenced_ids.count(id)) {
          ++kept;
        } else {
          remove(id);
        }
      }
      r.bodies_kept += kept;
      // Rows of a fill never published, with or without bodies: the
      // directory stays until a recovery that can delete them has (Gecko
      // deletes an orphaned cache only after an unclean shutdown).
      if (unpublished_caches.count(manifest->fill_cache_id)) {
        ++r.fills_waiting;
        waiting = true;
      }
      for (const std::string& id : manifest->replaced_ids) {
        // Still referenced: the injection that would replace it never
        // committed.
        if (referenced_ids.count(id)) continue;
        if (readers == Readers::kNone) {
          remove(id);
        } else {
          std::error_code ignored;
          if (fs::exists(cache_dir / *MorguePathOfBodyId(id), ignored)) {
            ++r.bodies_waiting;
            waiting = true;
          }
        }
      }
    }
    if (waiting) return;
    std::error_code ignored;
    fs::remove_all(dir, ignored);
    ++r.directories;
  });
  return r;
}

}  // namespace quiesce
