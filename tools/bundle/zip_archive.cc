#include "zip_archive.h"

#include <zip.h>

#include <cstdlib>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace quiesce::bundle {

namespace {

std::string OpenError(int code) {
  zip_error_t error;
  zip_error_init_with_code(&error, code);
  std::string message = zip_error_strerror(&error);
  zip_error_fini(&error);
  return message;
}

// Entries get a fixed time so that packing the same cache twice gives the
// same bytes (1980-01-01, the earliest a ZIP can say).
constexpr time_t kEntryTime = 315532800;

}  // namespace

absl::StatusOr<std::unique_ptr<ZipWriter>> ZipWriter::Create(
    const std::filesystem::path& path) {
  int code = 0;
  zip_t* zip = zip_open(path.c_str(), ZIP_CREATE | ZIP_TRUNCATE, &code);
  if (zip == nullptr) {
    return absl::InternalError(absl::StrCat(
        "cannot create ", path.string(), ": ", OpenError(code)));
  }
  return std::unique_ptr<ZipWriter>(new ZipWriter(zip, path));
}

ZipWriter::~ZipWriter() {
  if (zip_ != nullptr) zip_discard(zip_);
}

absl::Status ZipWriter::Added(int64_t index, const std::string& name,
                              bool store) {
  if (index < 0 ||
      zip_set_file_compression(zip_, static_cast<zip_uint64_t>(index),
                               store ? ZIP_CM_STORE : ZIP_CM_DEFLATE,
                               0) != 0 ||
      zip_file_set_mtime(zip_, static_cast<zip_uint64_t>(index), kEntryTime,
                         0) != 0) {
    return absl::InternalError(absl::StrCat(
        "cannot add ", name, " to ", path_.string(), ": ", zip_strerror(zip_)));
  }
  return absl::OkStatus();
}

absl::Status ZipWriter::AddBytes(const std::string& name,
                                 std::string_view bytes) {
  // libzip frees the copy with free() once written (freep = 1).
  void* copy = std::malloc(bytes.empty() ? 1 : bytes.size());
  if (copy == nullptr) return absl::ResourceExhaustedError("out of memory");
  std::memcpy(copy, bytes.data(), bytes.size());
  zip_source_t* source = zip_source_buffer(zip_, copy, bytes.size(), 1);
  if (source == nullptr) {
    std::free(copy);
    return absl::InternalError(absl::StrCat("libzip: ", zip_strerror(zip_)));
  }
  int64_t index = zip_file_add(zip_, name.c_str(), source, ZIP_FL_ENC_UTF_8);
  if (index < 0) zip_source_free(source);
  return Added(index, name, /*store=*/false);
}

absl::Status ZipWriter::AddFile(const std::string& name,
                                const std::filesystem::path& source_path) {
  zip_source_t* source = zip_source_file(zip_, source_path.c_str(), 0, -1);
  if (source == nullptr) {
    return absl::InternalError(absl::StrCat("cannot read ",
                                            source_path.string(), ": ",
                                            zip_strerror(zip_)));
  }
  int64_t index = zip_file_add(zip_, name.c_str(), source, ZIP_FL_ENC_UTF_8);
  if (index < 0) zip_source_free(source);
  return Added(index, name, /*store=*/true);
}

absl::Status ZipWriter::Close(const std::function<void(double)>& progress) {
  if (progress) {
    // The state is borrowed: libzip calls back only inside zip_close.
    auto call = [](zip_t*, double fraction, void* state) {
      (*static_cast<const std::function<void(double)>*>(state))(fraction);
    };
    zip_register_progress_callback_with_state(
        zip_, 0.01, call, nullptr,
        const_cast<std::function<void(double)>*>(&progress));
  }
  if (zip_close(zip_) != 0) {
    absl::Status error = absl::InternalError(absl::StrCat(
        "cannot write ", path_.string(), ": ", zip_strerror(zip_)));
    zip_discard(zip_);
    zip_ = nullptr;
    return error;
  }
  zip_ = nullptr;
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<ZipReader>> ZipReader::Open(
    const std::filesystem::path& path) {
  int code = 0;
  zip_t* zip = zip_open(path.c_str(), ZIP_RDONLY | ZIP_CHECKCONS, &code);
  if (zip == nullptr) {
    return absl::DataLossError(absl::StrCat(
        path.string(), " is not a readable ZIP: ", OpenError(code)));
  }
  std::unique_ptr<ZipReader> reader(new ZipReader(zip, path));
  int64_t count = zip_get_num_entries(zip, 0);
  for (int64_t i = 0; i < count; ++i) {
    const char* name = zip_get_name(zip, static_cast<zip_uint64_t>(i), 0);
    if (name == nullptr) {
      return absl::DataLossError(absl::StrCat(
          path.string(), ": entry ", i, " has no name: ", zip_strerror(zip)));
    }
    reader->names_.push_back(name);
  }
  return reader;
}

ZipReader::~ZipReader() { zip_discard(zip_); }

absl::StatusOr<uint64_t> ZipReader::Size(const std::string& name) const {
  zip_stat_t stat;
  zip_stat_init(&stat);
  if (zip_stat(zip_, name.c_str(), 0, &stat) != 0 ||
      (stat.valid & ZIP_STAT_SIZE) == 0) {
    return absl::NotFoundError(
        absl::StrCat(path_.string(), " has no part ", name));
  }
  return stat.size;
}

absl::StatusOr<uint32_t> ZipReader::Crc(const std::string& name) const {
  zip_stat_t stat;
  zip_stat_init(&stat);
  if (zip_stat(zip_, name.c_str(), 0, &stat) != 0 ||
      (stat.valid & ZIP_STAT_CRC) == 0) {
    return absl::NotFoundError(
        absl::StrCat(path_.string(), " has no part ", name));
  }
  return stat.crc;
}

absl::Status ZipReader::Read(
    const std::string& name,
    const std::function<bool(std::string_view)>& sink) const {
  zip_file_t* file = zip_fopen(zip_, name.c_str(), 0);
  if (file == nullptr) {
    return absl::DataLossError(absl::StrCat(
        path_.string(), ": cannot open part ", name, ": ", zip_strerror(zip_)));
  }
  char buffer[64 * 1024];
  absl::Status status;
  for (;;) {
    zip_int64_t n = zip_fread(file, buffer, sizeof buffer);
    if (n < 0) {
      status = absl::DataLossError(absl::StrCat(path_.string(), ": part ",
                                                name, " is damaged: ",
                                                zip_file_strerror(file)));
      break;
    }
    if (n == 0) break;
    if (!sink(std::string_view(buffer, static_cast<size_t>(n)))) {
      status = absl::CancelledError(
          absl::StrCat("reading part ", name, " was stopped"));
      break;
    }
  }
  zip_fclose(file);
  return status;
}

}  // namespace quiesce::bundle
