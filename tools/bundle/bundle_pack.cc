// PackBundle: one cache of a database image plus its body files into a
// verified bundle.
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <system_error>

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

// Copies `from` to `to` (created), returning the bytes copied. ENOENT on
// `from` comes back as NotFound so that the caller may retry.
absl::StatusOr<int64_t> CopyFile(const std::filesystem::path& from,
                                 const std::filesystem::path& to) {
  int in = open(from.c_str(), O_RDONLY | O_CLOEXEC);
  if (in < 0) {
    int error = errno;
    std::string message =
        absl::StrCat("cannot open ", from.string(), ": ", std::strerror(error));
    return error == ENOENT ? absl::NotFoundError(message)
                           : absl::InternalError(message);
  }
  int out = open(to.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (out < 0) {
    close(in);
    return absl::InternalError(absl::StrCat("cannot create ", to.string(),
                                            ": ", std::strerror(errno)));
  }
  int64_t total = 0;
  absl::Status status;
  char buffer[64 * 1024];
  for (;;) {
    ssize_t n = read(in, buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      status = absl::InternalError(absl::StrCat(
          "cannot read ", from.string(), ": ", std::strerror(errno)));
      break;
    }
    if (n == 0) break;
    for (ssize_t done = 0; done < n;) {
      ssize_t w = write(out, buffer + done, static_cast<size_t>(n - done));
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) {
        status = absl::InternalError(absl::StrCat(
            "cannot write ", to.string(), ": ", std::strerror(errno)));
        break;
      }
      done += w;
    }
    if (!status.ok()) break;
    total += n;
  }
  close(in);
  close(out);
  if (!status.ok()) return status;
  return total;
}

// Copies one body of `entry` into the scratch directory, asking the hook
// whether to retry while it is missing.
absl::StatusOr<BodyPart> CopyBody(const CacheEntry& entry, bool request,
                                  size_t index,
                                  const std::filesystem::path& cache_dir,
                                  const std::filesystem::path& scratch,
                                  const PackOptions& options) {
  std::string prefix = request ? "request" : "response";
  std::string body_id = entry.Text(prefix + "_body_id");
  std::optional<std::string> relative = MorguePathOfBodyId(body_id);
  if (!relative) {
    return absl::DataLossError(absl::StrCat("entry ", entry.RequestUrl(),
                                            " has a malformed body id \"",
                                            body_id, "\""));
  }
  BodyPart part{BodyPartName(index, request), 0};
  std::filesystem::path source = cache_dir / *relative;
  for (int attempt = 1;; ++attempt) {
    absl::StatusOr<int64_t> size = CopyFile(source, scratch / part.part);
    if (size.ok()) {
      part.size = *size;
      break;
    }
    if (!absl::IsNotFound(size.status())) return size.status();
    if (!options.on_missing_body ||
        !options.on_missing_body(
            MissingBody{source, entry.RequestUrl(), attempt})) {
      return absl::NotFoundError(absl::StrCat(
          "the ", prefix, " body of ", entry.RequestUrl(), " (", *relative,
          ") is missing after ", attempt,
          " attempt(s): the entry was probably deleted after the snapshot; "
          "take a new snapshot and pack again"));
    }
  }
  if (std::optional<int64_t> disk_size =
          entry.Integer(prefix + "_body_disk_size");
      disk_size && *disk_size != part.size) {
    return absl::DataLossError(absl::StrCat(
        "the ", prefix, " body of ", entry.RequestUrl(), " (", *relative,
        ") has ", part.size, " bytes, the database says ", *disk_size));
  }
  return part;
}

absl::StatusOr<std::string> FileSha256(const std::filesystem::path& path) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return absl::InternalError(absl::StrCat("cannot open ", path.string(),
                                            ": ", std::strerror(errno)));
  }
  Sha256 sha;
  char buffer[64 * 1024];
  ssize_t n;
  while ((n = read(fd, buffer, sizeof buffer)) != 0) {
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      close(fd);
      return absl::InternalError(absl::StrCat("cannot read ", path.string(),
                                              ": ", std::strerror(errno)));
    }
    sha.Update(buffer, static_cast<size_t>(n));
  }
  close(fd);
  return sha.FinishHex();
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
  std::vector<BodyPart> bodies;
  for (size_t i = 0; i < cache->entries.size(); ++i) {
    BundleEntry entry{cache->entries[i], std::nullopt, std::nullopt};
    if (!options.keep_credential_headers) {
      DropCredentialHeaders(entry.entry.request_headers);
      DropCredentialHeaders(entry.entry.response_headers);
    }
    for (bool request : {true, false}) {
      if (entry.entry.Text(request ? "request_body_id" : "response_body_id")
              .empty()) {
        continue;
      }
      absl::StatusOr<BodyPart> body = CopyBody(
          entry.entry, request, i, cache_dir, scratch->path(), options);
      if (!body.ok()) return body.status();
      absl::StatusOr<std::string> sha =
          FileSha256(scratch->path() / body->part);
      if (!sha.ok()) return sha.status();
      meta.parts[body->part] = *sha;
      result.body_bytes += body->size;
      bodies.push_back(*body);
      (request ? entry.request_body : entry.response_body) = *body;
    }
    entry_jsons.push_back(EntryToJson(entry));
    meta.parts[EntryPartName(i)] = Sha256Hex(entry_jsons.back());
  }

  std::string meta_json = MetaToJson(meta);
  std::filesystem::path zip_path = scratch->path() / "bundle.zip";
  absl::StatusOr<std::unique_ptr<ZipWriter>> zip = ZipWriter::Create(zip_path);
  if (!zip.ok()) return zip.status();
  absl::Status added = (*zip)->AddBytes(kMetaPart, meta_json);
  if (added.ok()) added = (*zip)->AddBytes(kSecurityInfoPart, security_json);
  for (size_t i = 0; added.ok() && i < entry_jsons.size(); ++i) {
    added = (*zip)->AddBytes(EntryPartName(i), entry_jsons[i]);
  }
  for (size_t i = 0; added.ok() && i < bodies.size(); ++i) {
    added = (*zip)->AddFile(bodies[i].part, scratch->path() / bodies[i].part);
  }
  if (!added.ok()) return added;
  if (absl::Status closed = (*zip)->Close(); !closed.ok()) return closed;

  // Read back what was written: `out` only ever receives a bundle that
  // verifies.
  absl::StatusOr<std::unique_ptr<Bundle>> check = Bundle::Open(zip_path);
  if (!check.ok()) return check.status();
  if (rename(zip_path.c_str(), out.c_str()) != 0) {
    return absl::InternalError(absl::StrCat("cannot rename to ", out.string(),
                                            ": ", std::strerror(errno)));
  }
  result.entry_count = meta.number_of_entries;
  result.meta_sha256 = Sha256Hex(meta_json);
  return result;
}

}  // namespace quiesce::bundle
