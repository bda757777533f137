// Thin owners of libzip handles: a writer that builds a ZIP and a reader
// that streams its entries. Errors as absl::Status naming the archive.
#ifndef QUIESCE_TOOLS_BUNDLE_ZIP_ARCHIVE_H_
#define QUIESCE_TOOLS_BUNDLE_ZIP_ARCHIVE_H_

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

typedef struct zip zip_t;

namespace quiesce::bundle {

// Builds a ZIP; nothing reaches the file before Close() (libzip writes the
// archive at close). Destroying an unclosed writer discards it.
class ZipWriter {
 public:
  static absl::StatusOr<std::unique_ptr<ZipWriter>> Create(
      const std::filesystem::path& path);
  ~ZipWriter();
  ZipWriter(const ZipWriter&) = delete;
  ZipWriter& operator=(const ZipWriter&) = delete;

  // Adds `bytes` (copied) as `name`, deflated.
  absl::Status AddBytes(const std::string& name, std::string_view bytes);
  // Adds the file at `source` as `name`, stored as is (body files are
  // already compressed). The file is read at Close().
  absl::Status AddFile(const std::string& name,
                       const std::filesystem::path& source);
  // Writes the archive; `progress` (may be empty) gets libzip's fraction
  // done, 0.0 to 1.0, as it goes.
  absl::Status Close(const std::function<void(double)>& progress = {});

 private:
  ZipWriter(zip_t* zip, std::filesystem::path path)
      : zip_(zip), path_(std::move(path)) {}
  absl::Status Added(int64_t index, const std::string& name, bool store);
  zip_t* zip_;
  std::filesystem::path path_;
};

// Reads a ZIP. Not thread-safe: callers serialise.
class ZipReader {
 public:
  static absl::StatusOr<std::unique_ptr<ZipReader>> Open(
      const std::filesystem::path& path);
  ~ZipReader();
  ZipReader(const ZipReader&) = delete;
  ZipReader& operator=(const ZipReader&) = delete;

  // Entry names in archive order (duplicates included).
  const std::vector<std::string>& names() const { return names_; }
  // The uncompressed size of `name`.
  absl::StatusOr<uint64_t> Size(const std::string& name) const;
  // The CRC-32 the archive records for `name`'s uncompressed bytes.
  absl::StatusOr<uint32_t> Crc(const std::string& name) const;
  // Streams `name` to `sink` in chunks; a sink returning false stops the
  // read with an error. Fails on a libzip error (a CRC mismatch included).
  absl::Status Read(const std::string& name,
                    const std::function<bool(std::string_view)>& sink) const;

 private:
  ZipReader(zip_t* zip, std::filesystem::path path)
      : zip_(zip), path_(std::move(path)) {}
  zip_t* zip_;
  std::filesystem::path path_;
  std::vector<std::string> names_;
};

}  // namespace quiesce::bundle

#endif  // QUIESCE_TOOLS_BUNDLE_ZIP_ARCHIVE_H_
