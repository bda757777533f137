// PackFlap: one cache of a database image into a signed .flap, as
// Appelflap's packer writes it (docs/flap.md, "Packing").
#include <fcntl.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <regex>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "digest.h"
#include "flap.h"
#include "flap_internal.h"
#include "flap_zip.h"
#include "gecko_names.h"
#include "nlohmann/json.hpp"

namespace quiesce::bundle::flap {

using ojson = nlohmann::ordered_json;

namespace {

void PutLe(std::string& out, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) {
    out.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
  }
}

uint32_t Le(std::string_view b, size_t at, int bytes) {
  uint32_t v = 0;
  for (int i = bytes - 1; i >= 0; --i) {
    v = (v << 8) | static_cast<unsigned char>(b[at + static_cast<size_t>(i)]);
  }
  return v;
}

// CRC-32C as Gecko's ComputeCrc32c(~0, data) returns it: the register
// without the standard's final inversion. Gecko writes and checks chunk
// CRCs this way (SnappyFrameUtils; seen on a real Firefox's morgue files),
// so a chunk made with the standard CRC-32C is "corrupted" to Gecko.
uint32_t GeckoCrc32c(std::string_view data) {
  static const auto kTable = [] {
    std::array<uint32_t, 256> t{};
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int b = 0; b < 8; ++b) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
      t[i] = c;
    }
    return t;
  }();
  uint32_t crc = 0xFFFFFFFFu;
  for (unsigned char c : data) crc = kTable[(crc ^ c) & 0xFF] ^ (crc >> 8);
  return crc;
}

uint32_t Masked(uint32_t crc) {
  return ((crc >> 15) | (crc << 17)) + 0xA282EAD8u;
}

// Raw snappy holding `data` as one literal (valid snappy; Gecko's
// decompressor reads any valid snappy).
std::string SnappyLiteral(std::string_view data) {
  std::string out;
  for (uint64_t n = data.size();;) {
    const uint8_t b = n & 0x7F;
    n >>= 7;
    out.push_back(static_cast<char>(b | (n ? 0x80 : 0)));
    if (!n) break;
  }
  if (!data.empty()) {
    const uint64_t n = data.size() - 1;
    if (n < 60) {
      out.push_back(static_cast<char>(n << 2));
    } else {
      int bytes = 1;
      while (bytes < 4 && (n >> (8 * bytes)) != 0) ++bytes;
      out.push_back(static_cast<char>((59 + bytes) << 2));
      PutLe(out, n, bytes);
    }
    out.append(data);
  }
  return out;
}

ojson Signed(std::string_view bytes) {
  ojson a = ojson::array();
  for (unsigned char c : bytes) {
    a.push_back(static_cast<int>(static_cast<signed char>(c)));
  }
  return a;
}

ojson ValueJson(const SqlValue& v) {
  switch (v.type) {
    case SqlValue::Type::kNull:
      return nullptr;
    case SqlValue::Type::kInteger:
      return v.integer;
    case SqlValue::Type::kReal:
      return static_cast<int64_t>(v.real);
    case SqlValue::Type::kText:
      return v.bytes;
    case SqlValue::Type::kBlob:
      return Signed(v.bytes);
  }
  return nullptr;
}

std::string Dump(const ojson& j) {
  return j.dump(-1, ' ', false, ojson::error_handler_t::strict);
}

// Appelflap's HeaderFilter.sane_default.
bool DroppedHeader(const Header& h, bool request) {
  const std::string name = absl::AsciiStrToLower(h.name);
  return request ? (name == "authorization" || name == "proxy-authorization" ||
                    name == "cookie")
                 : name == "set-cookie";
}

ojson HeadersJson(std::vector<Header> headers, bool request, bool keep) {
  if (!keep) {
    std::erase_if(headers,
                  [&](const Header& h) { return DroppedHeader(h, request); });
  }
  std::sort(headers.begin(), headers.end(), [](const Header& a,
                                               const Header& b) {
    return std::tie(a.name, a.value) < std::tie(b.name, b.value);
  });
  ojson a = ojson::array();
  for (const Header& h : headers) {
    a.push_back({{"first", h.name}, {"second", h.value}});
  }
  return a;
}

// A Date header as Appelflap counts it ("Day, DD Mon YYYY HH:MM:SS GMT"
// exactly), in Unix seconds, read as UTC (Appelflap reads it in the
// device's zone, a bug quiesce does not copy).
std::optional<int64_t> DateSeconds(const std::string& value) {
  static const std::regex kDate(
      "[A-Z][a-z]{2}, [0-9]{2} [A-Z][a-z]{2} [0-9]{4} [0-9]{2}:[0-9]{2}:"
      "[0-9]{2} GMT");
  if (!std::regex_match(value, kDate)) return std::nullopt;
  struct tm tm {};
  if (strptime(value.c_str(), "%a, %d %b %Y %H:%M:%S GMT", &tm) == nullptr) {
    return std::nullopt;
  }
  return static_cast<int64_t>(timegm(&tm));
}

struct PkeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
struct X509Free {
  void operator()(X509* x) const { X509_free(x); }
};

absl::StatusOr<std::string> ReadFileBytes(const std::filesystem::path& path) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const int error = errno;
    std::string message =
        absl::StrCat("cannot open ", path.string(), ": ", std::strerror(error));
    return error == ENOENT ? absl::NotFoundError(message)
                           : absl::InternalError(message);
  }
  std::string out;
  char buf[64 * 1024];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      close(fd);
      return absl::InternalError(absl::StrCat("cannot read ", path.string()));
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  close(fd);
  return out;
}

class FlapSink {
 public:
  FlapSink(ZipStreamWriter& zip, EVP_PKEY* key) : zip_(zip), key_(key) {}

  absl::Status Data(const std::string& name, std::string_view data,
                    bool sign) {
    Sha256Raw h;
    if (!digest_.empty()) h.Update(digest_);
    h.Update(data);
    digest_ = h.Finish();
    if (auto s = zip_.Begin(name); !s.ok()) return s;
    if (auto s = zip_.Write(data); !s.ok()) return s;
    if (auto s = zip_.End(); !s.ok()) return s;
    if (!sign) return absl::OkStatus();
    auto sig = Sign();
    if (!sig.ok()) return sig.status();
    if (auto s = zip_.Begin(name + ".sig"); !s.ok()) return s;
    if (auto s = zip_.Write(*sig); !s.ok()) return s;
    return zip_.End();
  }
  const std::string& digest() const { return digest_; }

 private:
  absl::StatusOr<std::string> Sign() {
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
    size_t len = 0;
    std::string sig;
    bool ok = ctx != nullptr &&
              EVP_DigestSignInit(ctx, nullptr, EVP_sha256(), nullptr, key_) ==
                  1 &&
              EVP_DigestSign(ctx, nullptr, &len,
                             reinterpret_cast<const unsigned char*>(
                                 digest_.data()),
                             digest_.size()) == 1;
    if (ok) {
      sig.resize(len);
      ok = EVP_DigestSign(ctx, reinterpret_cast<unsigned char*>(sig.data()),
                          &len,
                          reinterpret_cast<const unsigned char*>(
                              digest_.data()),
                          digest_.size()) == 1;
      sig.resize(len);
    }
    EVP_MD_CTX_free(ctx);
    if (!ok) return absl::InternalError("signing with the device key failed");
    return sig;
  }
  ZipStreamWriter& zip_;
  EVP_PKEY* key_;
  std::string digest_;
};

// The chain as Appelflap writes it: 3 certificates, Base64 lines of 76,
// LF, joined by one LF, no trailing newline. Checks that the first one
// holds the device key's public half.
absl::StatusOr<std::string> AppelflapChain(const std::string& pem,
                                           EVP_PKEY* device_key,
                                           std::string* root_pem,
                                           std::string* app_id) {
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  std::vector<std::unique_ptr<X509, X509Free>> certs;
  while (X509* x = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr)) {
    certs.emplace_back(x);
  }
  BIO_free(bio);
  if (certs.size() != 3) {
    return absl::FailedPreconditionError(absl::StrCat(
        "--chain holds ", certs.size(),
        " certificates; Appelflap needs 3: device, deployment, root"));
  }
  if (EVP_PKEY_eq(X509_get0_pubkey(certs[0].get()), device_key) != 1) {
    return absl::FailedPreconditionError(
        "the first certificate of --chain is not the --key's (device) "
        "certificate");
  }
  std::string out;
  for (size_t i = 0; i < certs.size(); ++i) {
    unsigned char* der = nullptr;
    const int n = i2d_X509(certs[i].get(), &der);
    if (n < 0) return absl::InternalError("cannot encode a certificate");
    const std::string b64 =
        Base64Encode(std::string_view(reinterpret_cast<char*>(der),
                                      static_cast<size_t>(n)));
    OPENSSL_free(der);
    std::string block = "-----BEGIN CERTIFICATE-----\n";
    for (size_t at = 0; at < b64.size(); at += 76) {
      block += b64.substr(at, 76) + "\n";
    }
    block += "-----END CERTIFICATE-----";
    if (i == 2) *root_pem = block + "\n";
    out += (i ? "\n" : "") + block;
  }
  X509_NAME* subject = X509_get_subject_name(certs[1].get());
  const int at = X509_NAME_get_index_by_NID(subject, NID_commonName, -1);
  if (at >= 0) {
    unsigned char* utf8 = nullptr;
    const int n = ASN1_STRING_to_UTF8(
        &utf8, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, at)));
    if (n >= 0) {
      app_id->assign(reinterpret_cast<char*>(utf8), static_cast<size_t>(n));
      OPENSSL_free(utf8);
    }
  }
  return out;
}

}  // namespace

std::optional<std::string> GeckoReadableFraming(std::string_view framed) {
  static constexpr std::string_view kId("\xff\x06\x00\x00sNaPpY", 10);
  if (framed.substr(0, kId.size()) != kId) return std::nullopt;
  std::string out(kId);
  bool changed = false;
  for (size_t at = kId.size(); at < framed.size();) {
    if (at + 4 > framed.size()) return std::nullopt;
    const uint8_t type = static_cast<uint8_t>(framed[at]);
    const size_t len = Le(framed, at + 1, 3);
    if (at + 4 + len > framed.size()) return std::nullopt;
    const std::string_view chunk = framed.substr(at, 4 + len);
    at += 4 + len;
    if (type == 0x00 || type == 0xFF) {
      out.append(chunk);
    } else if (type == 0x01) {
      if (len < 4 || len - 4 > 65536) return std::nullopt;
      const std::string snappy = SnappyLiteral(chunk.substr(8));
      out.push_back('\0');
      PutLe(out, snappy.size() + 4, 3);
      // The CRC of the uncompressed data, computed as Gecko computes it
      // (the source's may be the standard CRC-32C, which Gecko rejects).
      PutLe(out, Masked(GeckoCrc32c(chunk.substr(8))), 4);
      out.append(snappy);
      changed = true;
    } else if (type >= 0x80) {
      changed = true;  // padding and skippable chunks: Gecko cannot read them
    } else {
      return std::nullopt;  // reserved unskippable
    }
  }
  if (!changed) return std::string(framed);
  return out;
}

absl::StatusOr<FlapPackResult> PackFlap(sqlite3* image,
                                        const std::filesystem::path& cache_dir,
                                        std::string_view origin,
                                        std::string_view cache_name,
                                        const FlapPackOptions& options,
                                        const std::filesystem::path& out) {
  if (options.namespace_id != kDefaultNamespace) {
    return absl::UnimplementedError(
        "only page caches are packed as .flap (a service-worker bundle "
        "needs the registration from serviceworker.txt)");
  }
  std::error_code ec;
  if (!options.replace_existing && std::filesystem::exists(out, ec)) {
    return absl::AlreadyExistsError(
        absl::StrCat(out.string(), " exists: pass --force to replace it, or "
                                   "choose another name"));
  }
  BIO* bio = BIO_new_mem_buf(options.device_key_pem.data(),
                             static_cast<int>(options.device_key_pem.size()));
  std::unique_ptr<EVP_PKEY, PkeyFree> key(
      PEM_read_bio_PrivateKey(bio, nullptr, nullptr, nullptr));
  BIO_free(bio);
  if (!key || EVP_PKEY_base_id(key.get()) != EVP_PKEY_EC ||
      EVP_PKEY_get_bits(key.get()) != 256) {
    return absl::FailedPreconditionError(
        "--key is not a PEM EC P-256 private key (Appelflap's device key)");
  }
  std::string root_pem, app_id;
  auto chain = AppelflapChain(options.chain_pem, key.get(), &root_pem,
                              &app_id);
  if (!chain.ok()) return chain.status();

  auto schema = ReadSchema(image);
  if (!schema.ok()) return schema.status();
  auto contents = ReadCache(image, options.namespace_id, cache_name);
  if (!contents.ok()) return contents.status();

  FlapPackResult result;
  result.schema_version = schema->user_version;
  result.entry_count = static_cast<int64_t>(contents->entries.size());
  const std::vector<std::string>& columns = AppelflapEntryColumns();
  if (const auto* live = schema->Columns("entries")) {
    for (const ColumnInfo& c : *live) {
      if (c.name == "id" || c.name == "cache_id") continue;
      if (std::find(columns.begin(), columns.end(), c.name) ==
          columns.end()) {
        result.dropped.push_back("entries." + c.name);
      }
    }
  }
  for (const char* table : {"usage_info"}) {
    if (schema->HasTable(table)) result.dropped.push_back(table);
  }

  std::optional<int64_t> last_date;
  for (const CacheEntry& e : contents->entries) {
    for (const Header& h : e.response_headers) {
      if (absl::AsciiStrToLower(h.name) != "date") continue;
      if (auto t = DateSeconds(h.value); t && (!last_date || *t > *last_date)) {
        last_date = t;
      }
    }
  }
  unsigned char nonce_md5[16];
  std::optional<std::string> random = RandomBytes(128);
  if (!random || EVP_Digest(random->data(), random->size(), nonce_md5,
                            nullptr, EVP_md5(), nullptr) != 1) {
    return absl::InternalError("cannot make a nonce");
  }
  ojson meta = {
      {"format", kFormatVersion},
      {"signatureAlgorithm", kSignatureAlgorithm},
      {"cacheDescriptor",
       {{"origin", std::string(origin)},
        {"name", std::string(cache_name)},
        {"namespace", "CACHE"},
        {"number_of_entries", result.entry_count},
        {"user_version", options.user_version
                             ? ojson(*options.user_version)
                             : ojson(nullptr)},
        {"last_server_timestamp",
         last_date ? ojson(*last_date) : ojson(nullptr)}}},
      {"nonce", HexEncode(std::string_view(
                    reinterpret_cast<char*>(nonce_md5), sizeof nonce_md5))}};
  ojson sec_map = ojson::object();
  for (const auto& [id, info] : contents->security_info) {
    sec_map[std::to_string(id)] = {{"first", Signed(info.hash)},
                                   {"second", Signed(info.data)}};
  }
  const ojson security = {{"security_map", sec_map}};

  const std::filesystem::path partial =
      out.string() + ".partial-" + std::to_string(getpid());
  std::filesystem::remove(partial, ec);
  auto zip = ZipStreamWriter::Create(partial);
  if (!zip.ok()) return zip.status();
  auto fail = [&](absl::Status s) {
    zip->reset();
    std::filesystem::remove(partial, ec);
    return s;
  };
  FlapSink sink(**zip, key.get());
  if (auto s = sink.Data("CERTCHAIN.pem", *chain, false); !s.ok()) {
    return fail(s);
  }
  if (auto s = sink.Data(std::to_string(kFormatVersion), "", false);
      !s.ok()) {
    return fail(s);
  }
  if (auto s = sink.Data("META.json", Dump(meta), true); !s.ok()) {
    return fail(s);
  }
  if (auto s = sink.Data("SECURITY_INFO.json", Dump(security), true);
      !s.ok()) {
    return fail(s);
  }
  for (size_t i = 0; i < contents->entries.size(); ++i) {
    const CacheEntry& e = contents->entries[i];
    // Bodies first (read, reframed, measured), then the record naming
    // their sizes; one body in memory at a time.
    std::optional<std::string> bodies[2];
    for (const bool request : {true, false}) {
      const std::string kind = request ? "request" : "response";
      const std::string id = e.Text(kind + "_body_id");
      auto it = e.columns.find(kind + "_body_id");
      if (it == e.columns.end() || it->second.is_null()) continue;
      std::optional<std::string> relative = MorguePathOfBodyId(id);
      if (!relative) {
        return fail(absl::DataLossError(absl::StrCat(
            "entry ", e.RequestUrl(), " has a malformed body id \"", id,
            "\"")));
      }
      const std::filesystem::path path = cache_dir / *relative;
      absl::StatusOr<std::string> raw = ReadFileBytes(path);
      if (absl::IsNotFound(raw.status())) {
        if (options.on_missing_body) {
          options.on_missing_body(MissingBody{path, e.RequestUrl(), 1});
        }
        return fail(absl::NotFoundError(absl::StrCat(
            "the ", kind, " body of ", e.RequestUrl(), " (", *relative,
            ") is missing: the entry was deleted after the snapshot")));
      }
      if (!raw.ok()) return fail(raw.status());
      std::optional<std::string> framed = GeckoReadableFraming(*raw);
      if (!framed) {
        return fail(absl::DataLossError(absl::StrCat(
            "the ", kind, " body of ", e.RequestUrl(), " (", *relative,
            ") is not in the Snappy framing format")));
      }
      if (*framed != *raw) ++result.reframed_bodies;
      bodies[request ? 0 : 1] = std::move(*framed);
    }
    ojson rec = ojson::object();
    for (const std::string& c : columns) {
      auto it = e.columns.find(c);
      if (it == e.columns.end()) {
        return fail(absl::FailedPreconditionError(absl::StrCat(
            "the database's entries table has no column ", c,
            " (schema ", schema->user_version, ")")));
      }
      rec[c] = ValueJson(it->second);
    }
    std::vector<std::string> urls = e.response_url_list;
    std::sort(urls.begin(), urls.end());
    rec["response_url_list"] = urls;
    rec["request_headers"] = HeadersJson(e.request_headers, true,
                                         options.keep_credential_headers);
    rec["response_headers"] = HeadersJson(e.response_headers, false,
                                          options.keep_credential_headers);
    rec["request_bodysize"] =
        bodies[0] ? ojson(bodies[0]->size()) : ojson(nullptr);
    rec["response_bodysize"] =
        bodies[1] ? ojson(bodies[1]->size()) : ojson(nullptr);
    if (auto s = sink.Data(absl::StrCat(i, ".json"), Dump(rec), true);
        !s.ok()) {
      return fail(s);
    }
    for (const bool request : {true, false}) {
      auto& body = bodies[request ? 0 : 1];
      if (!body) continue;
      result.body_bytes += static_cast<int64_t>(body->size());
      if (auto s = sink.Data(absl::StrCat(i, request ? ".request_body"
                                                     : ".response_body"),
                             *body, true);
          !s.ok()) {
        return fail(s);
      }
    }
  }
  if (auto s = (*zip)->Close(); !s.ok()) return fail(s);
  result.final_digest = HexEncode(sink.digest());
  // Read back as Appelflap's reader would, under the chain's own root.
  ReadOptions check;
  check.trusted_root_pem = root_pem;
  check.app_id = app_id;
  if (auto read = ReadFlap(partial, check); !read.ok()) {
    return fail(absl::InternalError(absl::StrCat(
        "the packed .flap does not verify: ", read.status().message())));
  }
  std::filesystem::rename(partial, out, ec);
  if (ec) {
    return fail(absl::InternalError(absl::StrCat(
        "cannot rename to ", out.string(), ": ", ec.message())));
  }
  return result;
}

}  // namespace quiesce::bundle::flap
