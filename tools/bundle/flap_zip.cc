// The .flap ZIP reader and writer (flap_zip.h).
#include "flap_zip.h"

#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace quiesce::bundle::flap {

namespace {

constexpr uint32_t kLocalHeader = 0x04034b50;
constexpr uint32_t kDataDescriptor = 0x08074b50;
constexpr uint32_t kCentralHeader = 0x02014b50;
constexpr uint32_t kEndOfCentral = 0x06054b50;
constexpr uint16_t kFlagEncrypted = 0x0001;
constexpr uint16_t kFlagDescriptor = 0x0008;
constexpr uint16_t kFlagUtf8 = 0x0800;
constexpr uint16_t kStored = 0;
constexpr uint16_t kDeflated = 8;
constexpr size_t kChunk = 64 * 1024;

uint32_t Le(const std::string& b, size_t at, int bytes) {
  uint32_t v = 0;
  for (int i = bytes - 1; i >= 0; --i) {
    v = (v << 8) | static_cast<unsigned char>(b[at + static_cast<size_t>(i)]);
  }
  return v;
}

void PutLe(std::string& out, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) {
    out.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
  }
}

// Java decodes entry names as UTF-8 and fails on malformed input.
bool ValidUtf8(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    size_t n = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3
             : (c >> 3) == 0x1E ? 4 : 0;
    if (n == 0 || i + n > s.size()) return false;
    uint32_t cp = n == 1 ? c : c & (0x7F >> n);
    for (size_t k = 1; k < n; ++k) {
      const unsigned char d = static_cast<unsigned char>(s[i + k]);
      if ((d >> 6) != 0x2) return false;
      cp = (cp << 6) | (d & 0x3F);
    }
    static constexpr uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < kMin[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
      return false;
    }
    i += n;
  }
  return true;
}

absl::Status Truncated(const std::string& name) {
  return absl::FailedPreconditionError(
      absl::StrCat(name, ": truncated: the archive ends inside it"));
}

}  // namespace

struct ZipStreamReader::Entry {
  std::string name;
  uint16_t flags = 0;
  uint16_t method = 0;
  uint32_t crc_header = 0;
  uint64_t csize_header = 0;
  uint64_t usize_header = 0;
  uint32_t crc = 0;
  uint64_t in = 0;   // compressed bytes consumed
  uint64_t out = 0;  // uncompressed bytes produced
  bool done = false;
  bool ended = false;  // the deflate stream reached its end
  bool inflating = false;
  z_stream z{};
  ~Entry() {
    if (inflating) inflateEnd(&z);
  }
};

absl::StatusOr<std::unique_ptr<ZipStreamReader>> ZipStreamReader::Open(
    const std::filesystem::path& path) {
  std::FILE* f = std::fopen(path.c_str(), "rbe");
  if (f == nullptr) {
    return absl::NotFoundError(
        absl::StrCat("cannot open ", path.string(), ": ", std::strerror(errno)));
  }
  return std::unique_ptr<ZipStreamReader>(new ZipStreamReader(f));
}

ZipStreamReader::ZipStreamReader(std::FILE* file) : file_(file) {}
ZipStreamReader::~ZipStreamReader() { std::fclose(file_); }

// Makes at least `want` bytes available in buffer_ unless the file ends.
absl::Status ZipStreamReader::Fill(size_t want) {
  while (buffer_.size() < want) {
    char tmp[kChunk];
    size_t n = std::fread(tmp, 1, sizeof tmp, file_);
    if (n == 0) {
      if (std::ferror(file_)) {
        return absl::InternalError(
            absl::StrCat("reading the bundle: ", std::strerror(errno)));
      }
      return absl::OkStatus();
    }
    buffer_.append(tmp, n);
  }
  return absl::OkStatus();
}

absl::StatusOr<std::optional<std::string>> ZipStreamReader::Next() {
  if (entry_ && !entry_->done) {
    return absl::InternalError("the previous entry was not read to its end");
  }
  entry_.reset();
  if (auto s = Fill(30); !s.ok()) return s;
  if (buffer_.size() < 4 || Le(buffer_, 0, 4) != kLocalHeader) {
    return std::optional<std::string>();
  }
  if (buffer_.size() < 30) return Truncated("a local header");
  auto e = std::make_unique<Entry>();
  e->flags = static_cast<uint16_t>(Le(buffer_, 6, 2));
  e->method = static_cast<uint16_t>(Le(buffer_, 8, 2));
  e->crc_header = Le(buffer_, 14, 4);
  e->csize_header = Le(buffer_, 18, 4);
  e->usize_header = Le(buffer_, 22, 4);
  const size_t name_len = Le(buffer_, 26, 2), extra_len = Le(buffer_, 28, 2);
  if (auto s = Fill(30 + name_len + extra_len); !s.ok()) return s;
  if (buffer_.size() < 30 + name_len + extra_len) {
    return Truncated("a local header");
  }
  e->name = buffer_.substr(30, name_len);
  // Zip64 sizes in the local header's extra field (Java reads them when a
  // size is 0xFFFFFFFF).
  if (e->csize_header == 0xFFFFFFFFu || e->usize_header == 0xFFFFFFFFu) {
    for (size_t at = 30 + name_len; at + 4 <= 30 + name_len + extra_len;) {
      const uint32_t id = Le(buffer_, at, 2), len = Le(buffer_, at + 2, 2);
      if (at + 4 + len > 30 + name_len + extra_len) break;
      if (id == 0x0001 && len >= 16) {
        e->usize_header = Le(buffer_, at + 4, 4) |
                          (uint64_t{Le(buffer_, at + 8, 4)} << 32);
        e->csize_header = Le(buffer_, at + 12, 4) |
                          (uint64_t{Le(buffer_, at + 16, 4)} << 32);
      }
      at += 4 + len;
    }
  }
  buffer_.erase(0, 30 + name_len + extra_len);
  offset_ += 30 + name_len + extra_len;
  if (!ValidUtf8(e->name)) {
    return absl::FailedPreconditionError(
        "(an entry name): not UTF-8 (Java's reader fails on it)");
  }
  if (e->flags & kFlagEncrypted) {
    return absl::FailedPreconditionError(
        absl::StrCat(e->name, ": encrypted entries are not accepted"));
  }
  if (e->method != kStored && e->method != kDeflated) {
    return absl::FailedPreconditionError(absl::StrCat(
        e->name, ": compression method ", e->method, " is not accepted"));
  }
  if (e->method == kStored && (e->flags & kFlagDescriptor)) {
    return absl::FailedPreconditionError(absl::StrCat(
        e->name, ": a STORED entry with a data descriptor is not accepted"));
  }
  if (e->method == kDeflated) {
    if (inflateInit2(&e->z, -MAX_WBITS) != Z_OK) {
      return absl::InternalError("zlib: inflateInit2 failed");
    }
    e->inflating = true;
  }
  std::string name = e->name;
  entry_ = std::move(e);
  return std::optional<std::string>(std::move(name));
}

absl::Status ZipStreamReader::Read(size_t max, std::string* out) {
  out->clear();
  if (!entry_) return absl::InternalError("no current entry");
  Entry& e = *entry_;
  if (e.done || max == 0) return absl::OkStatus();
  if (e.ended) return Finish();
  if (e.method == kStored) {
    const uint64_t left = e.usize_header - e.out;
    if (left == 0) return Finish();
    const size_t want = static_cast<size_t>(std::min<uint64_t>(
        std::min<uint64_t>(left, max), kChunk));
    if (auto s = Fill(want); !s.ok()) return s;
    if (buffer_.empty()) return Truncated(e.name);
    const size_t n = std::min(want, buffer_.size());
    out->assign(buffer_, 0, n);
    buffer_.erase(0, n);
    offset_ += n;
    e.in += n;
  } else {
    out->resize(std::min(max, kChunk));
    size_t produced = 0;
    while (produced == 0) {
      if (buffer_.empty()) {
        if (auto s = Fill(1); !s.ok()) return s;
        if (buffer_.empty()) return Truncated(e.name);
      }
      e.z.next_in = reinterpret_cast<Bytef*>(buffer_.data());
      e.z.avail_in = static_cast<uInt>(buffer_.size());
      e.z.next_out = reinterpret_cast<Bytef*>(out->data());
      e.z.avail_out = static_cast<uInt>(out->size());
      const int rc = inflate(&e.z, Z_NO_FLUSH);
      const size_t used = buffer_.size() - e.z.avail_in;
      buffer_.erase(0, used);
      offset_ += used;
      e.in += used;
      produced = out->size() - e.z.avail_out;
      if (rc == Z_STREAM_END) {
        out->resize(produced);
        e.out += produced;
        e.crc = static_cast<uint32_t>(crc32(
            e.crc, reinterpret_cast<const Bytef*>(out->data()),
            static_cast<uInt>(produced)));
        if (produced == 0) return Finish();
        // The end is checked on the next call, with nothing left to give.
        inflateEnd(&e.z);
        e.inflating = false;
        e.ended = true;
        return absl::OkStatus();
      }
      if (rc != Z_OK && rc != Z_BUF_ERROR) {
        return absl::FailedPreconditionError(
            absl::StrCat(e.name, ": ZIP error: bad deflate data"));
      }
      if (rc == Z_BUF_ERROR && used == 0 && produced == 0) {
        // No progress with what is buffered: more input or the end.
        const size_t had = buffer_.size();
        if (auto s = Fill(had + 1); !s.ok()) return s;
        if (buffer_.size() == had) return Truncated(e.name);
      }
    }
    out->resize(produced);
  }
  e.out += out->size();
  e.crc = static_cast<uint32_t>(
      crc32(e.crc, reinterpret_cast<const Bytef*>(out->data()),
            static_cast<uInt>(out->size())));
  return absl::OkStatus();
}

absl::Status ZipStreamReader::Finish() {
  Entry& e = *entry_;
  e.done = true;
  uint32_t crc = e.crc_header;
  uint64_t csize = e.csize_header, usize = e.usize_header;
  const bool deflated = e.method != kStored;
  if (deflated && (e.flags & kFlagDescriptor)) {
    const bool wide = e.in > 0xFFFFFFFFu || e.out > 0xFFFFFFFFu;
    const size_t body = wide ? 20 : 12;
    if (auto s = Fill(4 + body); !s.ok()) return s;
    size_t at = 0;
    if (buffer_.size() >= 4 && Le(buffer_, 0, 4) == kDataDescriptor) at = 4;
    if (buffer_.size() < at + body) return Truncated(e.name);
    crc = Le(buffer_, at, 4);
    if (wide) {
      csize = Le(buffer_, at + 4, 4) | (uint64_t{Le(buffer_, at + 8, 4)} << 32);
      usize =
          Le(buffer_, at + 12, 4) | (uint64_t{Le(buffer_, at + 16, 4)} << 32);
    } else {
      csize = Le(buffer_, at + 4, 4);
      usize = Le(buffer_, at + 8, 4);
    }
    buffer_.erase(0, at + body);
    offset_ += at + body;
  }
  if (crc != e.crc) {
    return absl::FailedPreconditionError(
        absl::StrCat(e.name, ": ZIP error: CRC-32 mismatch"));
  }
  if (deflated && (csize != e.in || usize != e.out)) {
    return absl::FailedPreconditionError(
        absl::StrCat(e.name, ": ZIP error: entry size mismatch"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> ZipStreamReader::ReadAll(size_t limit) {
  std::string all, chunk;
  for (;;) {
    const size_t room = limit + 1 - all.size();
    if (auto s = Read(room, &chunk); !s.ok()) return s;
    if (chunk.empty()) return all;
    all += chunk;
    if (all.size() > limit) {
      return absl::FailedPreconditionError(absl::StrCat(
          entry_->name, ": over its size limit of ", limit, " bytes"));
    }
  }
}

// ---------------------------------------------------------------------------

struct ZipStreamWriter::Central {
  std::string name;
  uint32_t crc = 0;
  uint64_t csize = 0, usize = 0, offset = 0;
  uint32_t mtime = 0;
};

struct ZipStreamWriter::Current {
  Central c;
};

ZipStreamWriter::ZipStreamWriter(std::FILE* file, std::filesystem::path path)
    : file_(file), path_(std::move(path)) {}

absl::StatusOr<std::unique_ptr<ZipStreamWriter>> ZipStreamWriter::Create(
    const std::filesystem::path& path) {
  std::FILE* f = std::fopen(path.c_str(), "wbxe");
  if (f == nullptr) {
    return absl::InternalError(absl::StrCat("cannot create ", path.string(),
                                            ": ", std::strerror(errno)));
  }
  return std::unique_ptr<ZipStreamWriter>(new ZipStreamWriter(f, path));
}

ZipStreamWriter::~ZipStreamWriter() {
  if (file_ != nullptr) std::fclose(file_);
}

absl::Status ZipStreamWriter::Put(std::string_view bytes) {
  if (std::fwrite(bytes.data(), 1, bytes.size(), file_) != bytes.size()) {
    return absl::InternalError(absl::StrCat("cannot write ", path_.string(),
                                            ": ", std::strerror(errno)));
  }
  offset_ += bytes.size();
  return absl::OkStatus();
}

namespace {
std::string TimeExtra(uint32_t mtime) {
  std::string x;
  PutLe(x, 0x5455, 2);
  PutLe(x, 5, 2);
  x.push_back(1);
  PutLe(x, mtime, 4);
  return x;
}
}  // namespace

absl::Status ZipStreamWriter::Begin(const std::string& name) {
  current_ = std::make_unique<Current>();
  Central& c = current_->c;
  c.name = name;
  c.offset = offset_;
  c.mtime = static_cast<uint32_t>(central_.size() * 60);
  std::string h;
  PutLe(h, kLocalHeader, 4);
  PutLe(h, 20, 2);
  PutLe(h, kFlagDescriptor | kFlagUtf8, 2);
  PutLe(h, kDeflated, 2);
  PutLe(h, 0x0000, 2);  // DOS time
  PutLe(h, 0x0021, 2);  // DOS date 1980-01-01
  PutLe(h, 0, 4);
  PutLe(h, 0, 4);
  PutLe(h, 0, 4);
  const std::string extra = TimeExtra(c.mtime);
  PutLe(h, name.size(), 2);
  PutLe(h, extra.size(), 2);
  h += name;
  h += extra;
  return Put(h);
}

// Deflate "stored" blocks, as zlib at level 0 makes them.
absl::Status ZipStreamWriter::Deflate(std::string_view data, bool finish) {
  Central& c = current_->c;
  do {
    const size_t n = std::min<size_t>(data.size(), 65535);
    std::string block;
    block.push_back(finish && n == data.size() ? 1 : 0);
    PutLe(block, n, 2);
    PutLe(block, ~n & 0xFFFF, 2);
    block.append(data.substr(0, n));
    if (auto s = Put(block); !s.ok()) return s;
    c.csize += block.size();
    data.remove_prefix(n);
  } while (!data.empty());
  return absl::OkStatus();
}

absl::Status ZipStreamWriter::Write(std::string_view data) {
  Central& c = current_->c;
  c.crc = static_cast<uint32_t>(crc32(
      c.crc, reinterpret_cast<const Bytef*>(data.data()),
      static_cast<uInt>(data.size())));
  c.usize += data.size();
  while (!data.empty()) {
    const size_t n = std::min<size_t>(data.size(), kChunk);
    if (auto s = Deflate(data.substr(0, n), false); !s.ok()) return s;
    data.remove_prefix(n);
  }
  return absl::OkStatus();
}

absl::Status ZipStreamWriter::End() {
  if (auto s = Deflate({}, true); !s.ok()) return s;
  Central& c = current_->c;
  std::string d;
  PutLe(d, kDataDescriptor, 4);
  PutLe(d, c.crc, 4);
  const bool wide = c.csize > 0xFFFFFFFFu || c.usize > 0xFFFFFFFFu;
  PutLe(d, c.csize, wide ? 8 : 4);
  PutLe(d, c.usize, wide ? 8 : 4);
  if (wide) {
    return absl::UnimplementedError(
        absl::StrCat(c.name, ": entries past 4 GiB (Zip64) are not written"));
  }
  if (auto s = Put(d); !s.ok()) return s;
  central_.push_back(c);
  current_.reset();
  return absl::OkStatus();
}

absl::Status ZipStreamWriter::Close() {
  const uint64_t start = offset_;
  for (const Central& c : central_) {
    std::string h;
    PutLe(h, kCentralHeader, 4);
    PutLe(h, 20, 2);
    PutLe(h, 20, 2);
    PutLe(h, kFlagDescriptor | kFlagUtf8, 2);
    PutLe(h, kDeflated, 2);
    PutLe(h, 0x0000, 2);
    PutLe(h, 0x0021, 2);
    PutLe(h, c.crc, 4);
    PutLe(h, c.csize, 4);
    PutLe(h, c.usize, 4);
    const std::string extra = TimeExtra(c.mtime);
    PutLe(h, c.name.size(), 2);
    PutLe(h, extra.size(), 2);
    PutLe(h, 0, 2);  // comment
    PutLe(h, 0, 2);  // disk
    PutLe(h, 0, 2);  // internal attributes
    PutLe(h, 0, 4);  // external attributes
    PutLe(h, c.offset, 4);
    h += c.name;
    h += extra;
    if (auto s = Put(h); !s.ok()) return s;
  }
  if (central_.size() > 0xFFFF || offset_ > 0xFFFFFFFFu) {
    return absl::UnimplementedError(
        "more than 65535 entries or 4 GiB (Zip64) are not written");
  }
  std::string end;
  PutLe(end, kEndOfCentral, 4);
  PutLe(end, 0, 2);
  PutLe(end, 0, 2);
  PutLe(end, central_.size(), 2);
  PutLe(end, central_.size(), 2);
  PutLe(end, offset_ - start, 4);
  PutLe(end, start, 4);
  PutLe(end, 0, 2);
  if (auto s = Put(end); !s.ok()) return s;
  // Not fsynced, like the quiesce format's libzip writer: syncing a few
  // hundred MB at once put the page's own commits behind that writeback
  // (a put of 434 ms during a 400 MB pack, docs/benchmarks.md). A file cut
  // short by a crash fails its digests when read.
  const bool flushed = std::fflush(file_) == 0;
  const bool closed = std::fclose(file_) == 0;
  file_ = nullptr;
  if (!flushed || !closed) {
    return absl::InternalError(absl::StrCat("cannot write ", path_.string(),
                                            ": ", std::strerror(errno)));
  }
  return absl::OkStatus();
}

}  // namespace quiesce::bundle::flap
