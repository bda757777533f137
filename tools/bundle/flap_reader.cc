// ReadFlap: a .flap checked exactly as Appelflap's DumpfileUnpacker does
// (docs/flap.md lists the rules), streaming, first violation wins.
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cstdio>
#include <memory>
#include <regex>
#include <set>

#include "absl/strings/str_cat.h"
#include "digest.h"
#include "flap.h"
#include "flap_internal.h"
#include "flap_zip.h"
#include "nlohmann/json.hpp"

namespace quiesce::bundle::flap {

using json = nlohmann::json;

namespace {

absl::Status Violation(const std::string& entry, const std::string& reason) {
  return absl::FailedPreconditionError(absl::StrCat(entry, ": ", reason));
}

// ---------------------------------------------------------------------------
// Certificates (Appelflap's verifyAppelflapChain).

struct X509Free {
  void operator()(X509* x) const { X509_free(x); }
};
using X509Ptr = std::unique_ptr<X509, X509Free>;
struct PkeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyFree>;

// Java's CertificateFactory over PEM, called while bytes remain: junk
// lines before a BEGIN line are skipped, one line terminator after END is
// taken; bytes that hold no further certificate are an error.
absl::StatusOr<std::vector<X509Ptr>> ParseChain(const std::string& text) {
  static const std::string kBegin = "-----BEGIN CERTIFICATE-----";
  static const std::string kEnd = "-----END CERTIFICATE-----";
  std::vector<X509Ptr> certs;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t begin = std::string::npos;
    for (size_t at = pos; at < text.size();) {
      if (text.compare(at, kBegin.size(), kBegin) == 0) {
        begin = at;
        break;
      }
      size_t nl = text.find_first_of("\r\n", at);
      if (nl == std::string::npos) break;
      at = nl + 1;
    }
    if (begin == std::string::npos) {
      return Violation("CERTCHAIN.pem",
                       "trailing bytes after the last certificate");
    }
    const size_t end = text.find(kEnd, begin);
    if (end == std::string::npos) {
      return Violation("CERTCHAIN.pem", "a certificate without its END line");
    }
    std::string b64;
    for (size_t i = begin + kBegin.size(); i < end; ++i) {
      const char c = text[i];
      if (c != '\r' && c != '\n' && c != ' ' && c != '\t') b64.push_back(c);
    }
    std::optional<std::string> der = Base64Decode(b64);
    if (!der) return Violation("CERTCHAIN.pem", "a certificate is not Base64");
    const unsigned char* p =
        reinterpret_cast<const unsigned char*>(der->data());
    X509Ptr cert(d2i_X509(nullptr, &p, static_cast<long>(der->size())));
    if (!cert || p != reinterpret_cast<const unsigned char*>(der->data()) +
                          der->size()) {
      return Violation("CERTCHAIN.pem", "a certificate is not valid DER X.509");
    }
    certs.push_back(std::move(cert));
    pos = end + kEnd.size();
    if (text.compare(pos, 2, "\r\n") == 0) {
      pos += 2;
    } else if (pos < text.size() && (text[pos] == '\n' || text[pos] == '\r')) {
      pos += 1;
    }
    if (certs.size() > 3) break;
  }
  return certs;
}

// The subject's first CN (DER order), or nullopt when it has none.
std::optional<std::string> FirstCn(X509* cert) {
  X509_NAME* subject = X509_get_subject_name(cert);
  const int at = X509_NAME_get_index_by_NID(subject, NID_commonName, -1);
  if (at < 0) return std::nullopt;
  ASN1_STRING* value =
      X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, at));
  unsigned char* utf8 = nullptr;
  const int n = ASN1_STRING_to_UTF8(&utf8, value);
  if (n < 0) return std::string();
  std::string cn(reinterpret_cast<char*>(utf8), static_cast<size_t>(n));
  OPENSSL_free(utf8);
  return cn;
}

absl::StatusOr<PkeyPtr> CheckChain(const std::string& chain_text,
                                   const ReadOptions& options, FlapInfo* info) {
  BIO* bio = BIO_new_mem_buf(options.trusted_root_pem.data(),
                             static_cast<int>(options.trusted_root_pem.size()));
  X509Ptr root(PEM_read_bio_X509(bio, nullptr, nullptr, nullptr));
  BIO_free(bio);
  if (!root) {
    return absl::InvalidArgumentError(
        "the trusted root is not a PEM certificate");
  }
  auto certs = ParseChain(chain_text);
  if (!certs.ok()) return certs.status();
  if (certs->size() != 3) {
    return Violation("CERTCHAIN.pem",
                     absl::StrCat(certs->size() > 3 ? "more than 3" :
                                  std::to_string(certs->size()),
                                  " certificates, not 3"));
  }
  X509* device = (*certs)[0].get();
  X509* deployment = (*certs)[1].get();
  EVP_PKEY* root_key = X509_get0_pubkey(root.get());
  if (root_key == nullptr || X509_verify(deployment, root_key) != 1) {
    return Violation("CERTCHAIN.pem",
                     "the deployment certificate is not signed by the "
                     "trusted root");
  }
  EVP_PKEY* deployment_key = X509_get0_pubkey(deployment);
  if (deployment_key == nullptr || X509_verify(device, deployment_key) != 1) {
    return Violation("CERTCHAIN.pem",
                     "the device certificate is not signed by the "
                     "deployment certificate");
  }
  const std::optional<std::string> app = FirstCn(deployment);
  info->deployment_cn = app.value_or("");
  if (!app || *app != options.app_id) {
    return Violation("CERTCHAIN.pem",
                     absl::StrCat("the deployment certificate's CN is \"",
                                  app.value_or(""), "\", not the app id \"",
                                  options.app_id, "\""));
  }
  const std::optional<std::string> node = FirstCn(device);
  if (!node || node->empty()) {
    return Violation("CERTCHAIN.pem",
                     "the device certificate has no (or an empty) CN");
  }
  info->device_cn = *node;
  EVP_PKEY* device_key = X509_get0_pubkey(device);
  if (device_key == nullptr || EVP_PKEY_base_id(device_key) != EVP_PKEY_EC) {
    return Violation("CERTCHAIN.pem", "the device key is not an EC key");
  }
  const int ku = X509_get_ext_by_NID(device, NID_key_usage, -1);
  if (ku >= 0 && X509_EXTENSION_get_critical(X509_get_ext(device, ku)) &&
      !(X509_get_key_usage(device) & KU_DIGITAL_SIGNATURE)) {
    return Violation("CERTCHAIN.pem",
                     "the device certificate's critical keyUsage lacks "
                     "digitalSignature");
  }
  EVP_PKEY_up_ref(device_key);
  return PkeyPtr(device_key);
}

bool VerifySignature(EVP_PKEY* key, const std::string& message,
                     const std::string& der) {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  bool ok = ctx != nullptr &&
            EVP_DigestVerifyInit(ctx, nullptr, EVP_sha256(), nullptr, key) ==
                1 &&
            EVP_DigestVerify(
                ctx, reinterpret_cast<const unsigned char*>(der.data()),
                der.size(),
                reinterpret_cast<const unsigned char*>(message.data()),
                message.size()) == 1;
  EVP_MD_CTX_free(ctx);
  return ok;
}

// ---------------------------------------------------------------------------
// JSON as kotlinx.serialization decodes it: strict.

enum class Kind {
  kInt, kLong, kString, kBytes, kStringList, kPairs, kObject, kNamespace
};
struct Field {
  const char* key;
  Kind kind;
  bool nullable;
  bool required;
};

bool IntegerIn(const json& v, int bits, int64_t* out) {
  int64_t x = 0;
  if (v.is_number_integer()) {
    if (v.is_number_unsigned() &&
        v.get<uint64_t>() > static_cast<uint64_t>(INT64_MAX)) {
      return false;
    }
    x = v.get<int64_t>();
  } else if (v.is_string()) {  // kotlinx accepts a quoted number
    static const std::regex kNumber("-?[0-9]{1,19}");
    const std::string& s = v.get_ref<const std::string&>();
    if (!std::regex_match(s, kNumber)) return false;
    errno = 0;
    x = std::strtoll(s.c_str(), nullptr, 10);
    if (errno == ERANGE) return false;
  } else {
    return false;
  }
  if (bits == 32 && (x < INT32_MIN || x > INT32_MAX)) return false;
  if (out) *out = x;
  return true;
}

absl::Status CheckValue(const std::string& where, const Field& f,
                        const json& v) {
  if (v.is_null()) {
    if (f.nullable) return absl::OkStatus();
    return Violation(where, absl::StrCat(f.key, " is null"));
  }
  switch (f.kind) {
    case Kind::kInt:
    case Kind::kLong:
      if (!IntegerIn(v, f.kind == Kind::kInt ? 32 : 64, nullptr)) {
        return Violation(where, absl::StrCat(f.key, " is not an ",
                                             f.kind == Kind::kInt ? "Int"
                                                                  : "Long"));
      }
      break;
    case Kind::kString:
      if (!v.is_string()) {
        return Violation(where, absl::StrCat(f.key, " is not a string"));
      }
      break;
    case Kind::kBytes:
      if (!v.is_array()) {
        return Violation(where, absl::StrCat(f.key, " is not a byte array"));
      }
      for (const json& b : v) {
        int64_t x = 0;
        if (!b.is_number_integer() || !IntegerIn(b, 32, &x) || x < -128 ||
            x > 127) {
          return Violation(where, absl::StrCat(f.key, ": byte value ",
                                               b.dump(), " is not in "
                                               "-128..127"));
        }
      }
      break;
    case Kind::kStringList:
      if (!v.is_array()) {
        return Violation(where, absl::StrCat(f.key, " is not a list"));
      }
      for (const json& s : v) {
        if (!s.is_string()) {
          return Violation(where, absl::StrCat(f.key, " holds a non-string"));
        }
      }
      break;
    case Kind::kPairs:
      if (!v.is_array()) {
        return Violation(where, absl::StrCat(f.key, " is not a list"));
      }
      for (const json& p : v) {
        if (!p.is_object() || p.size() != 2 || !p.contains("first") ||
            !p.contains("second") || !p["first"].is_string() ||
            !p["second"].is_string()) {
          return Violation(where, absl::StrCat(f.key, " holds something "
                                               "not a string pair"));
        }
      }
      break;
    case Kind::kObject:
      if (!v.is_object()) {
        return Violation(where, absl::StrCat(f.key, " is not an object"));
      }
      break;
    case Kind::kNamespace:
      if (!v.is_string() || (v != "CACHE" && v != "SWORK")) {
        return Violation(where, absl::StrCat(f.key, " is not CACHE or SWORK"));
      }
      break;
  }
  return absl::OkStatus();
}

absl::Status CheckObject(const std::string& where, const json& obj,
                         const std::vector<Field>& fields) {
  if (!obj.is_object()) return Violation(where, "not a JSON object");
  for (const auto& [key, value] : obj.items()) {
    bool known = false;
    for (const Field& f : fields) known = known || key == f.key;
    if (!known) return Violation(where, absl::StrCat("unknown key \"", key,
                                                     "\""));
  }
  for (const Field& f : fields) {
    auto it = obj.find(f.key);
    if (it == obj.end()) {
      if (f.required) {
        return Violation(where, absl::StrCat("missing key \"", f.key, "\""));
      }
      continue;
    }
    if (auto s = CheckValue(where, f, *it); !s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::StatusOr<json> ParseJson(const std::string& where,
                               const std::string& text) {
  json v = json::parse(text, nullptr, false);
  if (v.is_discarded()) return Violation(where, "not valid JSON");
  return v;
}

std::optional<int64_t> OptInt(const json& v) {
  int64_t x = 0;
  if (v.is_null() || !IntegerIn(v, 64, &x)) return std::nullopt;
  return x;
}

// ---------------------------------------------------------------------------

class ChainReader {
 public:
  ChainReader(ZipStreamReader& zip, const ReadOptions& options)
      : zip_(zip), options_(options) {}

  // The next entry, which must be named `expect`.
  absl::Status Expect(const std::string& expect, const char* wrong_name) {
    auto next = zip_.Next();
    if (!next.ok()) return next.status();
    if (!next->has_value()) {
      return Violation(expect, "missing: the archive's entries end before it");
    }
    if (**next != expect) {
      return Violation(expect, absl::StrCat(wrong_name, " (found \"", **next,
                                            "\")"));
    }
    return absl::OkStatus();
  }

  absl::StatusOr<std::string> Data(const std::string& name, size_t limit,
                                   const char* wrong_name =
                                       "unexpected entry name") {
    if (auto s = Expect(name, wrong_name); !s.ok()) return s;
    auto data = zip_.ReadAll(limit);
    if (!data.ok()) return data.status();
    Feed(*data);
    return data;
  }

  void Feed(std::string_view data) {
    Sha256Raw h;
    if (!digest_.empty()) h.Update(digest_);
    h.Update(data);
    digest_ = h.Finish();
  }

  absl::Status Body(const std::string& name, int64_t size, int64_t index,
                    bool request) {
    if (auto s = Expect(name, "unexpected entry name"); !s.ok()) return s;
    Sha256Raw h;
    if (!digest_.empty()) h.Update(digest_);
    int64_t n = 0;
    std::string chunk;
    for (;;) {
      const size_t room = static_cast<size_t>(
          std::min<int64_t>(size + 1 - n, 64 * 1024));
      if (auto s = zip_.Read(room, &chunk); !s.ok()) return s;
      if (chunk.empty()) break;
      n += static_cast<int64_t>(chunk.size());
      if (n > size) {
        return Violation(name, absl::StrCat("longer than its size ", size,
                                            " in ", index, ".json"));
      }
      h.Update(chunk);
      if (options_.on_body_chunk) {
        if (auto s = options_.on_body_chunk(index, request, chunk); !s.ok()) {
          return s;
        }
      }
    }
    if (n != size) {
      return Violation(name, absl::StrCat(n, " bytes, not its size ", size,
                                          " in ", index, ".json"));
    }
    digest_ = h.Finish();
    return absl::OkStatus();
  }

  absl::Status Signature(const std::string& signed_name, EVP_PKEY* key) {
    auto next = zip_.Next();
    if (!next.ok()) return next.status();
    const std::string expect = signed_name + ".sig";
    if (!next->has_value()) {
      return Violation(expect, "missing: the archive's entries end before it");
    }
    const std::string& name = **next;
    if (name.size() < 4 || name.compare(name.size() - 4, 4, ".sig") != 0) {
      return Violation(expect,
                       absl::StrCat("unexpected entry name (found \"", name,
                                    "\")"));
    }
    auto sig = zip_.ReadAll(kMaxSignature);
    if (!sig.ok()) return sig.status();
    if (options_.verify && !VerifySignature(key, digest_, *sig)) {
      return Violation(name, "the signature does not verify");
    }
    return absl::OkStatus();
  }

  const std::string& digest() const { return digest_; }

 private:
  ZipStreamReader& zip_;
  const ReadOptions& options_;
  std::string digest_;  // raw 32 bytes, empty before the first entry
};

const std::vector<Field>& EntryFields() {
  static const std::vector<Field> kFields = {
      {"request_method", Kind::kString, false, true},
      {"request_url_no_query", Kind::kString, false, true},
      {"request_url_no_query_hash", Kind::kBytes, false, true},
      {"request_url_query", Kind::kString, false, true},
      {"request_url_query_hash", Kind::kBytes, false, true},
      {"request_referrer", Kind::kString, false, true},
      {"request_headers_guard", Kind::kInt, false, true},
      {"request_mode", Kind::kInt, false, true},
      {"request_credentials", Kind::kInt, false, true},
      {"request_contentpolicytype", Kind::kInt, false, true},
      {"request_cache", Kind::kInt, false, true},
      {"request_body_id", Kind::kString, true, true},
      {"response_type", Kind::kInt, false, true},
      {"response_status", Kind::kInt, false, true},
      {"response_status_text", Kind::kString, false, true},
      {"response_headers_guard", Kind::kInt, false, true},
      {"response_body_id", Kind::kString, true, true},
      {"response_security_info_id", Kind::kInt, true, true},
      {"response_principal_info", Kind::kString, false, true},
      {"request_redirect", Kind::kInt, false, true},
      {"request_referrer_policy", Kind::kInt, false, true},
      {"request_integrity", Kind::kString, false, true},
      {"request_url_fragment", Kind::kString, false, true},
      {"response_padding_size", Kind::kInt, true, true},
      {"response_url_list", Kind::kStringList, false, true},
      {"request_headers", Kind::kPairs, false, true},
      {"response_headers", Kind::kPairs, false, true},
      {"request_bodysize", Kind::kLong, true, true},
      {"response_bodysize", Kind::kLong, true, true},
  };
  return kFields;
}

}  // namespace

const std::vector<std::string>& AppelflapEntryColumns() {
  static const std::vector<std::string> kColumns = [] {
    std::vector<std::string> c;
    for (size_t i = 0; i < 24; ++i) c.push_back(EntryFields()[i].key);
    return c;
  }();
  return kColumns;
}

bool LooksLikeFlap(const std::filesystem::path& path) {
  auto zip = ZipStreamReader::Open(path);
  if (!zip.ok()) return false;
  auto first = (*zip)->Next();
  return first.ok() && first->has_value() && **first == "CERTCHAIN.pem";
}

absl::StatusOr<FlapInfo> ReadFlap(const std::filesystem::path& path,
                                  const ReadOptions& options) {
  auto zip = ZipStreamReader::Open(path);
  if (!zip.ok()) return zip.status();
  ChainReader r(**zip, options);
  FlapInfo info;
  info.verified = options.verify;

  // 1. The certificate chain, checked before anything else is trusted.
  auto chain = r.Data("CERTCHAIN.pem", kMaxCertChain);
  if (!chain.ok()) return chain.status();
  PkeyPtr key;
  if (options.verify) {
    auto checked = CheckChain(*chain, options, &info);
    if (!checked.ok()) return checked.status();
    key = std::move(*checked);
  }
  // 2. The empty entry that names the format version.
  if (auto s = r.Data(std::to_string(kFormatVersion), 0,
                      "bundle not compatible with this version (format 4 "
                      "expected)");
      !s.ok()) {
    return s.status();
  }
  // 3. META.json.
  auto meta_text = r.Data("META.json", kMaxMeta);
  if (!meta_text.ok()) return meta_text.status();
  auto meta = ParseJson("META.json", *meta_text);
  if (!meta.ok()) return meta.status();
  if (auto s = CheckObject("META.json", *meta,
                           {{"format", Kind::kInt, false, true},
                            {"signatureAlgorithm", Kind::kString, false, true},
                            {"cacheDescriptor", Kind::kObject, false, true},
                            {"serviceworkerDescriptor", Kind::kObject, true,
                             false},
                            {"nonce", Kind::kString, false, true},
                            {"name", Kind::kString, false, false}});
      !s.ok()) {
    return s;
  }
  const json& cd = (*meta)["cacheDescriptor"];
  if (auto s = CheckObject(
          "META.json cacheDescriptor", cd,
          {{"origin", Kind::kString, false, true},
           {"name", Kind::kString, false, true},
           {"namespace", Kind::kNamespace, false, true},
           {"number_of_entries", Kind::kInt, false, true},
           {"user_version", Kind::kLong, true, true},
           {"last_server_timestamp", Kind::kLong, true, true}});
      !s.ok()) {
    return s;
  }
  if (meta->contains("serviceworkerDescriptor") &&
      !(*meta)["serviceworkerDescriptor"].is_null()) {
    const json& sw = (*meta)["serviceworkerDescriptor"];
    if (auto s = CheckObject("META.json serviceworkerDescriptor", sw,
                             {{"version", Kind::kInt, false, true},
                              {"stanza", Kind::kStringList, false, true}});
        !s.ok()) {
      return s;
    }
    static const std::regex kUri("[A-Za-z][A-Za-z0-9+.-]*:[^\\s]*");
    if (sw["stanza"].size() < 3 ||
        !std::regex_match(sw["stanza"][2].get_ref<const std::string&>(),
                          kUri)) {
      return Violation("META.json",
                       "the service-worker stanza has no script URL in its "
                       "third field");
    }
    info.sw_version = OptInt(sw["version"]);
    for (const json& s : sw["stanza"]) info.sw_stanza.push_back(s);
  }
  if ((*meta)["signatureAlgorithm"] != kSignatureAlgorithm) {
    return Violation("META.json",
                     absl::StrCat("signature algorithm ",
                                  (*meta)["signatureAlgorithm"].dump(),
                                  " is not ", kSignatureAlgorithm));
  }
  info.origin = cd["origin"];
  info.name = cd["name"];
  info.namespace_name = cd["namespace"];
  info.number_of_entries = OptInt(cd["number_of_entries"]).value_or(0);
  info.user_version = OptInt(cd["user_version"]);
  info.last_server_timestamp = OptInt(cd["last_server_timestamp"]);
  info.nonce = (*meta)["nonce"];
  if (auto s = r.Signature("META.json", key.get()); !s.ok()) return s;

  // 4. SECURITY_INFO.json.
  auto sec_text = r.Data("SECURITY_INFO.json", kMaxSecurityInfo);
  if (!sec_text.ok()) return sec_text.status();
  {
    auto sec = ParseJson("SECURITY_INFO.json", *sec_text);
    if (!sec.ok()) return sec.status();
    if (auto s = CheckObject("SECURITY_INFO.json", *sec,
                             {{"security_map", Kind::kObject, false, true}});
        !s.ok()) {
      return s;
    }
    static const std::regex kKey("-?[0-9]{1,10}");
    for (const auto& [k, v] : (*sec)["security_map"].items()) {
      int64_t id = 0;
      if (!std::regex_match(k, kKey) || !IntegerIn(json(k), 32, &id)) {
        return Violation("SECURITY_INFO.json",
                         absl::StrCat("key \"", k, "\" is not an Int"));
      }
      if (auto s = CheckObject(absl::StrCat("SECURITY_INFO.json ", k), v,
                               {{"first", Kind::kBytes, false, true},
                                {"second", Kind::kBytes, false, true}});
          !s.ok()) {
        return s;
      }
      ++info.security_infos;
    }
  }
  if (options.on_security_info) {
    if (auto s = options.on_security_info(*sec_text); !s.ok()) return s;
  }
  sec_text->clear();
  sec_text->shrink_to_fit();
  if (auto s = r.Signature("SECURITY_INFO.json", key.get()); !s.ok()) {
    return s;
  }

  // 5. The entries, each with its bodies.
  std::set<std::string> body_ids;
  for (int64_t i = 0; i < info.number_of_entries; ++i) {
    const std::string name = absl::StrCat(i, ".json");
    auto text = r.Data(name, kMaxEntryJson);
    if (!text.ok()) return text.status();
    auto rec = ParseJson(name, *text);
    if (!rec.ok()) return rec.status();
    if (auto s = CheckObject(name, *rec, EntryFields()); !s.ok()) return s;
    if (auto s = r.Signature(name, key.get()); !s.ok()) return s;
    if (options.on_entry) {
      if (auto s = options.on_entry(i, *text); !s.ok()) return s;
    }
    FlapEntryInfo e;
    e.index = i;
    e.url = (*rec)["request_url_no_query"].get<std::string>() +
            (*rec)["request_url_query"].get<std::string>();
    e.opaque = !(*rec)["response_padding_size"].is_null() ||
               OptInt((*rec)["response_type"]) == kResponseTypeOpaque;
    for (const bool request : {true, false}) {
      const std::string kind = request ? "request" : "response";
      const json& id = (*rec)[kind + "_body_id"];
      if (id.is_null()) continue;
      const std::string body = absl::StrCat(i, ".", kind, "_body");
      if (!body_ids.insert(id.get<std::string>()).second) {
        return Violation(body, absl::StrCat("body id ", id.get<std::string>(),
                                            " appears twice in the bundle"));
      }
      const std::optional<int64_t> size = OptInt((*rec)[kind + "_bodysize"]);
      if (!size || *size < 0) {
        return Violation(body, absl::StrCat(kind, "_bodysize in ", name,
                                            " is null or negative"));
      }
      if (*size > options.max_body_bytes - info.body_bytes) {
        return Violation(body, absl::StrCat(
                                   "the bodies would exceed the limit of ",
                                   options.max_body_bytes, " bytes"));
      }
      if (auto s = r.Body(body, *size, i, request); !s.ok()) return s;
      if (auto s = r.Signature(body, key.get()); !s.ok()) return s;
      info.body_bytes += *size;
      (request ? e.request_bodysize : e.response_bodysize) = size;
    }
    info.entries.push_back(std::move(e));
  }
  // 6. Nothing after this point is read (Appelflap ignores it too).
  info.final_digest = HexEncode(r.digest());
  return info;
}

}  // namespace quiesce::bundle::flap
