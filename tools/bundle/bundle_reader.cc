// Bundle::Open: a bundle is verified completely (structure, every part's
// SHA-256, every entry) before anything of it is handed out.
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <mutex>
#include <set>

#include "absl/strings/str_cat.h"
#include "bundle_json.h"
#include "cache_bundle.h"
#include "digest.h"
#include "zip_archive.h"

namespace quiesce::bundle {

struct Bundle::Archive {
  std::mutex mutex;  // libzip handles are not thread-safe
  std::unique_ptr<ZipReader> zip;
};

namespace {

// JSON parts are read into memory: a cap keeps a hostile bundle from
// exhausting it. Bodies are streamed and have no cap.
constexpr uint64_t kMaxJsonPart = 64ull << 20;

enum class PartKind { kSecurityInfo, kEntry, kRequestBody, kResponseBody };

// Parses a part name of the format; nullopt for any other name.
std::optional<std::pair<PartKind, size_t>> ParsePartName(
    const std::string& name) {
  if (name == kSecurityInfoPart) return {{PartKind::kSecurityInfo, 0}};
  size_t dot = name.find('.');
  if (dot == 0 || dot == std::string::npos || dot > 9) return std::nullopt;
  size_t index = 0;
  for (size_t i = 0; i < dot; ++i) {
    if (name[i] < '0' || name[i] > '9') return std::nullopt;
    index = index * 10 + static_cast<size_t>(name[i] - '0');
  }
  if (std::to_string(index) != name.substr(0, dot)) return std::nullopt;
  std::string suffix = name.substr(dot);
  if (suffix == ".json") return {{PartKind::kEntry, index}};
  if (suffix == ".request_body") return {{PartKind::kRequestBody, index}};
  if (suffix == ".response_body") return {{PartKind::kResponseBody, index}};
  return std::nullopt;
}

// Reads a part while hashing it; `keep` collects its bytes when set.
absl::Status VerifyPart(const ZipReader& zip, const std::string& name,
                        const std::string& expected_sha,
                        std::string* keep) {
  if (keep != nullptr) {
    absl::StatusOr<uint64_t> size = zip.Size(name);
    if (!size.ok()) return size.status();
    if (*size > kMaxJsonPart) {
      return absl::DataLossError(
          absl::StrCat("part ", name, " is too large (", *size, " bytes)"));
    }
  }
  Sha256 sha;
  absl::Status read = zip.Read(name, [&](std::string_view chunk) {
    sha.Update(chunk);
    if (keep != nullptr) keep->append(chunk);
    return true;
  });
  if (!read.ok()) return read;
  if (sha.FinishHex() != expected_sha) {
    return absl::DataLossError(absl::StrCat(
        "part ", name, " does not match its SHA-256 in META.json"));
  }
  return absl::OkStatus();
}

}  // namespace

Bundle::Bundle() : archive_(std::make_unique<Archive>()) {}
Bundle::~Bundle() = default;

absl::StatusOr<std::unique_ptr<Bundle>> Bundle::Open(
    const std::filesystem::path& path) {
  absl::StatusOr<std::unique_ptr<ZipReader>> zip = ZipReader::Open(path);
  if (!zip.ok()) return zip.status();
  auto fail = [&](const absl::Status& status) {
    return absl::Status(status.code(),
                        absl::StrCat("bundle ", path.string(),
                                     " rejected: ", status.message()));
  };

  std::set<std::string> names;
  for (const std::string& name : (*zip)->names()) {
    if (!names.insert(name).second) {
      return fail(absl::DataLossError(
          absl::StrCat("part ", name, " appears twice")));
    }
  }
  if (names.count(kMetaPart) == 0) {
    return fail(absl::DataLossError("no META.json"));
  }
  std::string meta_text;
  {
    absl::StatusOr<uint64_t> size = (*zip)->Size(kMetaPart);
    if (!size.ok()) return fail(size.status());
    if (*size > kMaxJsonPart) {
      return fail(absl::DataLossError("META.json is too large"));
    }
    absl::Status read = (*zip)->Read(kMetaPart, [&](std::string_view chunk) {
      meta_text.append(chunk);
      return true;
    });
    if (!read.ok()) return fail(read);
  }
  absl::StatusOr<BundleMeta> meta = MetaFromJson(meta_text);
  if (!meta.ok()) return fail(meta.status());

  // The parts in the ZIP are exactly the parts META.json lists.
  for (const auto& [name, sha] : meta->parts) {
    if (names.count(name) == 0) {
      return fail(absl::DataLossError(
          absl::StrCat("part ", name, " listed in META.json is missing")));
    }
  }
  for (const std::string& name : names) {
    if (name != kMetaPart && meta->parts.count(name) == 0) {
      return fail(absl::DataLossError(
          absl::StrCat("part ", name, " is not listed in META.json")));
    }
  }

  size_t entry_count = static_cast<size_t>(meta->number_of_entries);
  std::vector<std::string> entry_texts(entry_count);
  std::vector<bool> seen_entry(entry_count, false);
  std::string security_text;
  bool seen_security = false;
  std::set<std::string> body_parts;
  for (const auto& [name, sha] : meta->parts) {
    std::optional<std::pair<PartKind, size_t>> kind = ParsePartName(name);
    if (!kind || (kind->first != PartKind::kSecurityInfo &&
                  kind->second >= entry_count)) {
      return fail(absl::DataLossError(
          absl::StrCat("part ", name, " is not a part of this format")));
    }
    std::string* keep = nullptr;
    if (kind->first == PartKind::kSecurityInfo) {
      keep = &security_text;
      seen_security = true;
    } else if (kind->first == PartKind::kEntry) {
      keep = &entry_texts[kind->second];
      seen_entry[kind->second] = true;
    } else {
      body_parts.insert(name);
    }
    if (absl::Status s = VerifyPart(**zip, name, sha, keep); !s.ok()) {
      return fail(s);
    }
  }
  if (!seen_security) return fail(absl::DataLossError("no SECURITY_INFO.json"));

  std::unique_ptr<Bundle> bundle(new Bundle());
  absl::StatusOr<std::map<int64_t, SecurityInfo>> security =
      SecurityInfoFromJson(security_text);
  if (!security.ok()) return fail(security.status());
  for (const auto& [id, info] : *security) {
    if (info.hash != GeckoHash(info.data)) {
      return fail(absl::DataLossError(absl::StrCat(
          "SECURITY_INFO.json: security info ", id,
          " has a hash that is not the SHA-1 prefix of its data")));
    }
  }
  bundle->security_info_ = *std::move(security);

  for (size_t i = 0; i < entry_count; ++i) {
    std::string part = EntryPartName(i);
    if (!seen_entry[i]) {
      return fail(absl::DataLossError(absl::StrCat("no part ", part)));
    }
    absl::StatusOr<BundleEntry> entry = EntryFromJson(entry_texts[i]);
    if (!entry.ok()) {
      return fail(absl::DataLossError(
          absl::StrCat("part ", part, ": ", entry.status().message())));
    }
    for (bool request : {true, false}) {
      const std::optional<BodyPart>& body =
          request ? entry->request_body : entry->response_body;
      if (!body) continue;
      absl::StatusOr<uint64_t> size = (*zip)->Size(body->part);
      if (body->part != BodyPartName(i, request) ||
          body_parts.erase(body->part) == 0 || !size.ok() ||
          *size != static_cast<uint64_t>(body->size)) {
        return fail(absl::DataLossError(absl::StrCat(
            "part ", part, " references body ", body->part,
            " which is missing, misnamed or of another size")));
      }
    }
    if (std::optional<int64_t> security_id =
            entry->entry.Integer("response_security_info_id");
        security_id && bundle->security_info_.count(*security_id) == 0) {
      return fail(absl::DataLossError(absl::StrCat(
          "part ", part, " references security info ", *security_id,
          " which SECURITY_INFO.json lacks")));
    }
    bundle->entries_.push_back(*std::move(entry));
  }
  if (!body_parts.empty()) {
    return fail(absl::DataLossError(absl::StrCat(
        "part ", *body_parts.begin(), " is not referenced by its entry")));
  }
  bundle->meta_ = *std::move(meta);
  bundle->meta_sha256_ = Sha256Hex(meta_text);
  bundle->archive_->zip = *std::move(zip);
  return bundle;
}

absl::StatusOr<std::string> Bundle::ReadPart(const std::string& part) const {
  auto it = meta_.parts.find(part);
  if (it == meta_.parts.end()) {
    return absl::NotFoundError(absl::StrCat("the bundle has no part ", part));
  }
  std::string bytes;
  std::lock_guard<std::mutex> lock(archive_->mutex);
  Sha256 sha;
  absl::Status read = archive_->zip->Read(part, [&](std::string_view chunk) {
    sha.Update(chunk);
    bytes.append(chunk);
    return true;
  });
  if (!read.ok()) return read;
  if (sha.FinishHex() != it->second) {
    return absl::DataLossError(
        absl::StrCat("part ", part, " changed since the bundle was opened"));
  }
  return bytes;
}

absl::Status Bundle::ExtractPart(const std::string& part,
                                 const std::filesystem::path& dest) const {
  auto it = meta_.parts.find(part);
  if (it == meta_.parts.end()) {
    return absl::NotFoundError(absl::StrCat("the bundle has no part ", part));
  }
  int fd = open(dest.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) {
    return absl::InternalError(absl::StrCat("cannot create ", dest.string(),
                                            ": ", std::strerror(errno)));
  }
  std::string write_error;
  Sha256 sha;
  absl::Status status;
  {
    std::lock_guard<std::mutex> lock(archive_->mutex);
    status = archive_->zip->Read(part, [&](std::string_view chunk) {
      sha.Update(chunk);
      while (!chunk.empty()) {
        ssize_t n = write(fd, chunk.data(), chunk.size());
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
          write_error = std::strerror(errno);
          return false;
        }
        chunk.remove_prefix(static_cast<size_t>(n));
      }
      return true;
    });
  }
  if (!write_error.empty()) {
    status = absl::InternalError(
        absl::StrCat("cannot write ", dest.string(), ": ", write_error));
  } else if (status.ok() && sha.FinishHex() != it->second) {
    status = absl::DataLossError(
        absl::StrCat("part ", part, " changed since the bundle was opened"));
  }
  close(fd);
  if (!status.ok()) unlink(dest.c_str());
  return status;
}

}  // namespace quiesce::bundle
