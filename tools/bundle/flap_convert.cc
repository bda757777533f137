// ConvertFlap: a verified .flap becomes a quiesce bundle (docs/bundles.md),
// so that the one injection path (PlanInjection, StageBodies, one quiesce
// injection) serves both formats. Streaming: bodies and entry documents go
// to the scratch directory as they are read; only the security-info map
// is held in memory (Appelflap caps it at 8 MiB of JSON).
#include <cstdio>
#include <map>
#include <set>

#include "absl/strings/str_cat.h"
#include "bundle_json.h"
#include "digest.h"
#include "flap.h"
#include "flap_internal.h"
#include "nlohmann/json.hpp"
#include "zip_archive.h"

namespace quiesce::bundle::flap {

using json = nlohmann::json;

namespace {

std::string Unsigned(const json& signed_bytes) {
  std::string out;
  out.reserve(signed_bytes.size());
  for (const json& b : signed_bytes) {
    out.push_back(static_cast<char>(b.get<int64_t>() & 0xFF));
  }
  return out;
}

int64_t Int(const json& v) {
  return v.is_string() ? std::stoll(v.get<std::string>()) : v.get<int64_t>();
}

absl::Status WriteFile(const std::filesystem::path& path,
                       std::string_view bytes) {
  std::FILE* f = std::fopen(path.c_str(), "wbe");
  if (f == nullptr) {
    return absl::InternalError(absl::StrCat("cannot create ", path.string()));
  }
  const bool ok = std::fwrite(bytes.data(), 1, bytes.size(), f) ==
                  bytes.size();
  if (std::fclose(f) != 0 || !ok) {
    return absl::InternalError(absl::StrCat("cannot write ", path.string()));
  }
  return absl::OkStatus();
}

// An Appelflap <i>.json record as a quiesce bundle entry.
BundleEntry EntryOf(const json& rec, int64_t index) {
  BundleEntry e;
  for (const std::string& column : AppelflapEntryColumns()) {
    const json& v = rec[column];
    SqlValue value;
    if (v.is_null()) {
      value = SqlValue::Null();
    } else if (v.is_array()) {
      value = SqlValue::Blob(Unsigned(v));
    } else if (v.is_string()) {
      // Columns typed Int in Appelflap may come quoted; they are numbers.
      static const std::set<std::string> kInts = {
          "request_headers_guard", "request_mode", "request_credentials",
          "request_contentpolicytype", "request_cache", "response_type",
          "response_status", "response_headers_guard",
          "response_security_info_id", "request_redirect",
          "request_referrer_policy", "response_padding_size"};
      value = kInts.count(column) ? SqlValue::Integer(Int(v))
                                  : SqlValue::Text(v.get<std::string>());
    } else {
      value = SqlValue::Integer(Int(v));
    }
    e.entry.columns[column] = std::move(value);
  }
  for (const json& h : rec["request_headers"]) {
    e.entry.request_headers.push_back({h["first"], h["second"]});
  }
  for (const json& h : rec["response_headers"]) {
    e.entry.response_headers.push_back({h["first"], h["second"]});
  }
  for (const json& u : rec["response_url_list"]) {
    e.entry.response_url_list.push_back(u);
  }
  for (const bool request : {true, false}) {
    const std::string kind = request ? "request" : "response";
    if (rec[kind + "_body_id"].is_null()) continue;
    BodyPart part{BodyPartName(static_cast<size_t>(index), request),
                  Int(rec[kind + "_bodysize"])};
    (request ? e.request_body : e.response_body) = part;
  }
  return e;
}

}  // namespace

absl::StatusOr<FlapInfo> ConvertFlap(const std::filesystem::path& flap,
                                     const ReadOptions& options,
                                     const std::filesystem::path& scratch,
                                     const std::filesystem::path& out) {
  std::map<int64_t, SecurityInfo> security;
  std::map<std::string, std::string> parts;  // name -> SHA-256 hex
  // The body being written: its file and running hash.
  std::FILE* body_file = nullptr;
  std::string body_part;
  std::unique_ptr<Sha256> body_sha;
  auto close_body = [&]() -> absl::Status {
    if (body_file == nullptr) return absl::OkStatus();
    const bool ok = std::fclose(body_file) == 0;
    body_file = nullptr;
    parts[body_part] = body_sha->FinishHex();
    if (!ok) return absl::InternalError("cannot write " + body_part);
    return absl::OkStatus();
  };

  ReadOptions read = options;
  read.on_security_info = [&](const std::string& text) -> absl::Status {
    const json sec = json::parse(text);
    for (const auto& [key, value] : sec["security_map"].items()) {
      SecurityInfo info;
      info.id = std::stoll(key);
      info.hash = Unsigned(value["first"]);
      info.data = Unsigned(value["second"]);
      security[info.id] = std::move(info);
    }
    return absl::OkStatus();
  };
  read.on_entry = [&](int64_t index, const std::string& text) -> absl::Status {
    if (auto s = close_body(); !s.ok()) return s;
    const BundleEntry e = EntryOf(json::parse(text), index);
    const std::string name = EntryPartName(static_cast<size_t>(index));
    const std::string doc = EntryToJson(e);
    parts[name] = Sha256Hex(doc);
    return WriteFile(scratch / name, doc);
  };
  read.on_body_chunk = [&](int64_t index, bool request,
                           std::string_view chunk) -> absl::Status {
    const std::string name = BodyPartName(static_cast<size_t>(index), request);
    if (body_file == nullptr || body_part != name) {
      if (auto s = close_body(); !s.ok()) return s;
      body_part = name;
      body_sha = std::make_unique<Sha256>();
      body_file = std::fopen((scratch / name).c_str(), "wbxe");
      if (body_file == nullptr) {
        return absl::InternalError("cannot create " +
                                   (scratch / name).string());
      }
    }
    body_sha->Update(chunk);
    if (std::fwrite(chunk.data(), 1, chunk.size(), body_file) !=
        chunk.size()) {
      return absl::InternalError("cannot write " + (scratch / name).string());
    }
    return absl::OkStatus();
  };
  absl::StatusOr<FlapInfo> info = ReadFlap(flap, read);
  absl::Status closed = close_body();
  if (!info.ok()) return info.status();
  if (!closed.ok()) return closed;

  // An empty body has no chunk: its file is made here.
  for (const FlapEntryInfo& e : info->entries) {
    for (const bool request : {true, false}) {
      const auto& size = request ? e.request_bodysize : e.response_bodysize;
      const std::string name =
          BodyPartName(static_cast<size_t>(e.index), request);
      if (size && !parts.count(name)) {
        if (auto s = WriteFile(scratch / name, ""); !s.ok()) return s;
        parts[name] = Sha256Hex("");
      }
    }
  }

  BundleMeta meta;
  meta.format_version = bundle::kFormatVersion;  // quiesce's, not 4
  meta.origin = info->origin;
  meta.name = info->name;
  meta.namespace_id = info->namespace_name == "SWORK" ? kChromeOnlyNamespace
                                                      : kDefaultNamespace;
  meta.number_of_entries = info->number_of_entries;
  meta.version = info->version().value_or(0);
  meta.schema_version = kAppelflapSchema;
  const std::string sec_doc = SecurityInfoToJson(security);
  parts[kSecurityInfoPart] = Sha256Hex(sec_doc);
  meta.parts = parts;

  auto zip = ZipWriter::Create(out);
  if (!zip.ok()) return zip.status();
  if (auto s = (*zip)->AddBytes(kMetaPart, MetaToJson(meta)); !s.ok()) {
    return s;
  }
  if (auto s = (*zip)->AddBytes(kSecurityInfoPart, sec_doc); !s.ok()) {
    return s;
  }
  for (const auto& [name, sha] : parts) {
    if (name == kSecurityInfoPart) continue;
    if (auto s = (*zip)->AddFile(name, scratch / name); !s.ok()) return s;
  }
  if (auto s = (*zip)->Close(); !s.ok()) return s;
  return info;
}

}  // namespace quiesce::bundle::flap
