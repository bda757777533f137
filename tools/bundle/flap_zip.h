// ZIP as Appelflap's .flap uses it (docs/flap.md): a reader that walks the
// LOCAL headers front to back as Java's ZipInputStream does (never the
// central directory), streaming each entry with a byte limit, and a writer
// that writes what Java's streaming ZipOutputStream writes (DEFLATED at
// level 0, data descriptors, Info-ZIP timestamps). Both keep only a small
// buffer in memory, whatever the archive claims.
#ifndef QUIESCE_TOOLS_BUNDLE_FLAP_ZIP_H_
#define QUIESCE_TOOLS_BUNDLE_FLAP_ZIP_H_

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace quiesce::bundle::flap {

// Reads entries in archive order. Errors name the entry.
class ZipStreamReader {
 public:
  static absl::StatusOr<std::unique_ptr<ZipStreamReader>> Open(
      const std::filesystem::path& path);
  ~ZipStreamReader();
  ZipStreamReader(const ZipStreamReader&) = delete;
  ZipStreamReader& operator=(const ZipStreamReader&) = delete;

  // Moves to the next local header: its name, or nullopt when the next
  // record is not a local header (the central directory, trailing bytes,
  // or the end of the file). The previous entry must have been read to its
  // end. Unsupported entries (encrypted, a method other than STORED or
  // DEFLATED, STORED with a data descriptor) are errors.
  absl::StatusOr<std::optional<std::string>> Next();

  // Reads up to `max` bytes of the current entry's data into `out`
  // (replacing it); an empty `out` means the entry ended, and then its
  // CRC-32 and sizes have been checked.
  absl::Status Read(size_t max, std::string* out);

  // The whole entry, at most `limit` bytes: one byte more is an error
  // ("over its size limit"), found after reading limit+1 bytes only.
  absl::StatusOr<std::string> ReadAll(size_t limit);

  // Bytes of the file consumed so far.
  uint64_t offset() const { return offset_; }

 private:
  struct Entry;
  explicit ZipStreamReader(std::FILE* file);
  absl::Status Fill(size_t want);
  absl::Status Finish();
  std::FILE* file_;
  std::string buffer_;  // read from the file, not yet consumed
  uint64_t offset_ = 0;
  std::unique_ptr<Entry> entry_;
};

// Writes a .flap ZIP as Java's ZipOutputStream does. Entry k (0-based,
// counting every entry) gets the time k*60 s after the epoch.
class ZipStreamWriter {
 public:
  static absl::StatusOr<std::unique_ptr<ZipStreamWriter>> Create(
      const std::filesystem::path& path);
  ~ZipStreamWriter();
  ZipStreamWriter(const ZipStreamWriter&) = delete;
  ZipStreamWriter& operator=(const ZipStreamWriter&) = delete;

  absl::Status Begin(const std::string& name);
  absl::Status Write(std::string_view data);
  absl::Status End();
  // Central directory, end record and close.
  absl::Status Close();

 private:
  struct Central;
  explicit ZipStreamWriter(std::FILE* file, std::filesystem::path path);
  absl::Status Put(std::string_view bytes);
  absl::Status Deflate(std::string_view data, bool finish);
  std::FILE* file_;
  std::filesystem::path path_;
  uint64_t offset_ = 0;
  std::vector<Central> central_;
  struct Current;
  std::unique_ptr<Current> current_;
};

}  // namespace quiesce::bundle::flap

#endif  // QUIESCE_TOOLS_BUNDLE_FLAP_ZIP_H_
