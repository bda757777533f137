// PackBundle: one cache of a database image plus its body files into a
// verified bundle.
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <system_error>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "bundle_json.h"
#include "cache_bundle.h"
#include "digest.h"
#include "gecko_names.h"
#include "zip_archive.h"

namespace quiesce::bundle {

namespace {

// A directory that is removed with everything in it when this goes away.
class ScratchDir {
 public:
  static absl::StatusOr<ScratchDir> Create(const std::filesystem::path& near) {
    std::string pattern = near.string() + ".tmp-XXXXXX";
    if (mkdtemp(pattern.data()) == nullptr) {
      return absl::InternalError(absl::StrCat("cannot create a directory ",
                                              pattern, ": ",
                                              std::strerror(errno)));
    }
    return ScratchDir(pattern);
  }
  ScratchDir(ScratchDir&& other) noexcept : path_(std::move(other.path_)) {
    other.path_.clear();
  }
  ScratchDir& operator=(ScratchDir&&) = delete;
  ~ScratchDir() {
    std::error_code ignored;
    if (!path_.empty()) std::filesystem::remove_all(path_, ignored);
  }
  const std::filesystem::path& path() const { return path_; }

 private:
  explicit ScratchDir(std::filesystem::path path) : path_(std::move(path)) {}
  std::filesystem::path path_;
};

bool IsCredentialHeader(const std::string& name) {
  std::string lower = absl::AsciiStrToLower(name);
  return lower == "cookie" || lower == "authorization" ||
         lower == "proxy-authorization" || lower == "set-cookie";
}

void DropCredentialHeaders(std::vector<Header>& headers) {
  std::erase_if(headers,
                [](const Header& h) { return IsCredentialHeader(h.name); });
}

// What one read of a body file gave: its size, its SHA-256 (for META.json)
// and its CRC-32 (to check that the ZIP holds the very bytes hashed).
struct FileDigest {
  int64_t size = 0;
  std::string sha256;
  uint32_t crc = 0;
};

// Reads `path` once. ENOENT comes back as NotFound so that the caller may
// retry.
absl::StatusOr<FileDigest> DigestFile(const std::filesystem::path& path) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    int error = errno;
    std::string message =
        absl::StrCat("cannot open ", path.string(), ": ", std::strerror(error));
    return error == ENOENT ? absl::NotFoundError(message)
                           : absl::InternalError(message);
  }
  posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
  FileDigest digest;
  Sha256 sha;
  uLong crc = crc32(0L, Z_NULL, 0);
  char buffer[128 * 1024];
  ssize_t n;
  while ((n = read(fd, buffer, sizeof buffer)) != 0) {
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      close(fd);
      return absl::InternalError(absl::StrCat("cannot read ", path.string(),
                                              ": ", std::strerror(errno)));
    }
    sha.Update(buffer, static_cast<size_t>(n));
    crc = crc32(crc, reinterpret_cast<const Bytef*>(buffer),
                static_cast<uInt>(n));
    digest.size += n;
  }
  close(fd);
  digest.sha256 = sha.FinishHex();
  digest.crc = static_cast<uint32_t>(crc);
  return digest;
}

uint32_t Crc32(std::string_view bytes) {
  return static_cast<uint32_t>(crc32(crc32(0L, Z_NULL, 0),
                                     reinterpret_cast<const Bytef*>(
                                         bytes.data()),
                                     static_cast<uInt>(bytes.size())));
}

// One body of `entry`, read once where it lies (bodies are never rewritten
// in place, and a pack from a live browser reads pins of them), asking the
// hook whether to retry while it is missing.
absl::StatusOr<std::pair<BodyPart, FileDigest>> DigestBody(
    const CacheEntry& entry, bool request, size_t index,
    const std::filesystem::path& cache_dir, const PackOptions& options,
    std::filesystem::path* source) {
  std::string prefix = request ? "request" : "response";
  std::string body_id = entry.Text(prefix + "_body_id");
  std::optional<std::string> relative = MorguePathOfBodyId(body_id);
  if (!relative) {
    return absl::DataLossError(absl::StrCat("entry ", entry.RequestUrl(),
                                            " has a malformed body id \"",
                                            body_id, "\""));
  }
  BodyPart part{BodyPartName(index, request), 0};
  *source = cache_dir / *relative;
  FileDigest digest;
  for (int attempt = 1;; ++attempt) {
    absl::StatusOr<FileDigest> read = DigestFile(*source);
    if (read.ok()) {
      digest = *std::move(read);
      break;
    }
    if (!absl::IsNotFound(read.status())) return read.status();
    if (!options.on_missing_body ||
        !options.on_missing_body(
            MissingBody{*source, entry.RequestUrl(), attempt})) {
      return absl::NotFoundError(absl::StrCat(
          "the ", prefix, " body of ", entry.RequestUrl(), " (", *relative,
          ") is missing after ", attempt,
          " attempt(s): the entry was probably deleted after the snapshot; "
          "take a new snapshot and pack again"));
    }
  }
  part.size = digest.size;
  if (std::optional<int64_t> disk_size =
          entry.Integer(prefix + "_body_disk_size");
      disk_size && *disk_size != part.size) {
    return absl::DataLossError(absl::StrCat(
        "the ", prefix, " body of ", entry.RequestUrl(), " (", *relative,
        ") has ", part.size, " bytes, the database says ", *disk_size));
  }
  return std::make_pair(part, std::move(digest));
}

// One body to read: entries[entry]'s request or response body.
struct BodyJob {
  size_t entry = 0;
  bool request = false;
};

struct DigestedBody {
  absl::StatusOr<std::pair<BodyPart, FileDigest>> digest =
      absl::UnknownError("not read");
  std::filesystem::path source;
};

// Reads every body of `jobs` once, on up to 4 threads (the read is
// SHA-256 and CRC-32 of bytes mostly in the page cache: CPU, which a
// second core halves), results in the order of `jobs`. The hooks of
// `options` are called one at a time, kHashing's `done` counting up.
std::vector<DigestedBody> DigestBodies(
    const std::vector<CacheEntry>& entries, const std::vector<BodyJob>& jobs,
    const std::filesystem::path& cache_dir, const PackOptions& options) {
  std::vector<DigestedBody> out(jobs.size());
  std::mutex hooks_mu;
  uint64_t done = 0;  // guarded by hooks_mu
  PackOptions serialised = options;
  if (options.on_missing_body) {
    serialised.on_missing_body = [&](const MissingBody& missing) {
      std::lock_guard<std::mutex> lock(hooks_mu);
      return options.on_missing_body(missing);
    };
  }
  std::atomic<size_t> next{0};
  auto work = [&] {
    while (true) {
      const size_t k = next.fetch_add(1);
      if (k >= jobs.size()) return;
      out[k].digest = DigestBody(entries[jobs[k].entry], jobs[k].request,
                                 jobs[k].entry, cache_dir, serialised,
                                 &out[k].source);
      std::lock_guard<std::mutex> lock(hooks_mu);
      ++done;
      if (options.on_progress) {
        options.on_progress(PackPhase::kHashing, done, jobs.size());
      }
    }
  };
  const size_t threads = std::min<size_t>(
      {jobs.size(), 4, std::max(1u, std::thread::hardware_concurrency())});
  std::vector<std::thread> helpers;
  try {
    for (size_t t = 1; t < threads; ++t) helpers.emplace_back(work);
  } catch (const std::system_error&) {
    // No thread to be had: the ones started, and this one, do it all.
  }
  work();
  for (std::thread& helper : helpers) helper.join();
  return out;
}

// Reads the central directory of the ZIP just written: exactly the parts
// expected, each with the size and CRC-32 of the bytes that were hashed
// into META.json. libzip computed those CRCs from what it wrote, so this
// proves the archive holds the hashed bytes without reading them again.
absl::Status CheckWritten(
    const std::filesystem::path& zip_path,
    const std::vector<std::pair<std::string, std::pair<int64_t, uint32_t>>>&
        expected) {
  absl::StatusOr<std::unique_ptr<ZipReader>> zip = ZipReader::Open(zip_path);
  if (!zip.ok()) return zip.status();
  const std::vector<std::string>& names = (*zip)->names();
  if (names.size() != expected.size()) {
    return absl::DataLossError(absl::StrCat(
        zip_path.string(), " holds ", names.size(), " parts, not ",
        expected.size()));
  }
  for (size_t i = 0; i < expected.size(); ++i) {
    const auto& [name, size_crc] = expected[i];
    absl::StatusOr<uint64_t> size = (*zip)->Size(name);
    absl::StatusOr<uint32_t> crc = (*zip)->Crc(name);
    if (names[i] != name || !size.ok() || !crc.ok() ||
        *size != static_cast<uint64_t>(size_crc.first) ||
        *crc != size_crc.second) {
      return absl::DataLossError(absl::StrCat(
          "part ", name, " of ", zip_path.string(),
          " is not what was hashed (did a body file change while it was "
          "packed?)"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<PackResult> PackBundle(sqlite3* image,
                                      const std::filesystem::path& cache_dir,
                                      std::string_view origin,
                                      std::string_view cache_name,
                                      const PackOptions& options,
                                      const std::filesystem::path& out) {
  absl::StatusOr<SchemaInfo> schema = ReadSchema(image);
  if (!schema.ok()) return schema.status();
  absl::StatusOr<CacheContents> cache =
      ReadCache(image, options.namespace_id, cache_name);
  if (!cache.ok()) return cache.status();
  absl::StatusOr<ScratchDir> scratch = ScratchDir::Create(out);
  if (!scratch.ok()) return scratch.status();

  PackResult result;
  result.schema_version = schema->user_version;
  BundleMeta meta;
  meta.format_version = kFormatVersion;
  meta.origin = std::string(origin);
  meta.name = std::string(cache_name);
  meta.namespace_id = options.namespace_id;
  meta.number_of_entries = static_cast<int64_t>(cache->entries.size());
  meta.version = options.version;
  meta.schema_version = schema->user_version;

  std::string security_json = SecurityInfoToJson(cache->security_info);
  meta.parts[kSecurityInfoPart] = Sha256Hex(security_json);
  std::vector<std::string> entry_jsons;
  // Body parts in archive order, each with the file it is read from.
  std::vector<std::pair<BodyPart, std::filesystem::path>> bodies;
  // Every part's name, size and CRC-32, in archive order.
  std::vector<std::pair<std::string, std::pair<int64_t, uint32_t>>> written;
  std::vector<std::pair<std::string, std::pair<int64_t, uint32_t>>>
      body_written;
  auto progress = [&options](PackPhase phase, uint64_t done, uint64_t total) {
    if (options.on_progress) options.on_progress(phase, done, total);
  };
  std::vector<BodyJob> jobs;
  for (size_t i = 0; i < cache->entries.size(); ++i) {
    for (bool request : {true, false}) {
      if (!cache->entries[i]
               .Text(request ? "request_body_id" : "response_body_id")
               .empty()) {
        jobs.push_back({i, request});
      }
    }
  }
  progress(PackPhase::kHashing, 0, jobs.size());
  std::vector<DigestedBody> digested =
      DigestBodies(cache->entries, jobs, cache_dir, options);
  size_t next_body = 0;  // into jobs and digested, which are in entry order
  for (size_t i = 0; i < cache->entries.size(); ++i) {
    BundleEntry entry{cache->entries[i], std::nullopt, std::nullopt};
    if (!options.keep_credential_headers) {
      DropCredentialHeaders(entry.entry.request_headers);
      DropCredentialHeaders(entry.entry.response_headers);
    }
    for (; next_body < jobs.size() && jobs[next_body].entry == i;
         ++next_body) {
      DigestedBody& body = digested[next_body];
      if (!body.digest.ok()) return body.digest.status();
      const auto& [part, digest] = *body.digest;
      meta.parts[part.part] = digest.sha256;
      result.body_bytes += part.size;
      bodies.emplace_back(part, body.source);
      body_written.push_back({part.part, {part.size, digest.crc}});
      (jobs[next_body].request ? entry.request_body : entry.response_body) =
          part;
    }
    entry_jsons.push_back(EntryToJson(entry));
    meta.parts[EntryPartName(i)] = Sha256Hex(entry_jsons.back());
  }

  std::string meta_json = MetaToJson(meta);
  std::filesystem::path zip_path = scratch->path() / "bundle.zip";
  absl::StatusOr<std::unique_ptr<ZipWriter>> zip = ZipWriter::Create(zip_path);
  if (!zip.ok()) return zip.status();
  auto add_bytes = [&](const std::string& name, std::string_view bytes) {
    written.push_back({name, {static_cast<int64_t>(bytes.size()),
                              Crc32(bytes)}});
    return (*zip)->AddBytes(name, bytes);
  };
  absl::Status added = add_bytes(kMetaPart, meta_json);
  if (added.ok()) added = add_bytes(kSecurityInfoPart, security_json);
  for (size_t i = 0; added.ok() && i < entry_jsons.size(); ++i) {
    added = add_bytes(EntryPartName(i), entry_jsons[i]);
  }
  for (size_t i = 0; added.ok() && i < bodies.size(); ++i) {
    added = (*zip)->AddFile(bodies[i].first.part, bodies[i].second);
  }
  if (!added.ok()) return added;
  progress(PackPhase::kWriting, 0, 1000);
  uint64_t permille = 0;  // reported so far: each value once, 1000 last
  absl::Status closed = (*zip)->Close([&](double fraction) {
    auto now = static_cast<uint64_t>(fraction * 1000);
    if (now > permille && now <= 1000) {
      permille = now;
      progress(PackPhase::kWriting, permille, 1000);
    }
  });
  if (!closed.ok()) return closed;
  if (permille < 1000) progress(PackPhase::kWriting, 1000, 1000);
  written.insert(written.end(), body_written.begin(), body_written.end());

  // `out` only ever receives a bundle that holds what META.json hashed.
  if (absl::Status checked = CheckWritten(zip_path, written); !checked.ok()) {
    return checked;
  }
  if (rename(zip_path.c_str(), out.c_str()) != 0) {
    return absl::InternalError(absl::StrCat("cannot rename to ", out.string(),
                                            ": ", std::strerror(errno)));
  }
  result.entry_count = meta.number_of_entries;
  result.meta_sha256 = Sha256Hex(meta_json);
  return result;
}

}  // namespace quiesce::bundle
