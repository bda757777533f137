#include "bundle_json.h"

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "digest.h"

namespace quiesce::bundle {

using nlohmann::json;

namespace {

// Keys of an entry document that are not columns of `entries`.
constexpr const char* kEntryKeys[] = {
    "request_headers", "response_headers", "response_url_list",
    "request_body",    "response_body",    "request_bodysize",
    "response_bodysize"};

bool IsEntryKey(const std::string& key) {
  for (const char* k : kEntryKeys) {
    if (key == k) return true;
  }
  return false;
}

json ValueToJson(const SqlValue& v) {
  switch (v.type) {
    case SqlValue::Type::kInteger:
      return v.integer;
    case SqlValue::Type::kReal:
      return v.real;
    case SqlValue::Type::kText:
      return v.bytes;
    case SqlValue::Type::kBlob:
      return json{{"base64", Base64Encode(v.bytes)}};
    case SqlValue::Type::kNull:
      break;
  }
  return nullptr;
}

std::optional<SqlValue> ValueFromJson(const json& j) {
  if (j.is_null()) return SqlValue::Null();
  if (j.is_number_integer()) return SqlValue::Integer(j.get<int64_t>());
  if (j.is_number_float()) {
    SqlValue v;
    v.type = SqlValue::Type::kReal;
    v.real = j.get<double>();
    return v;
  }
  if (j.is_string()) return SqlValue::Text(j.get<std::string>());
  if (j.is_object() && j.size() == 1 && j.contains("base64") &&
      j["base64"].is_string()) {
    std::optional<std::string> bytes =
        Base64Decode(j["base64"].get<std::string>());
    if (bytes) return SqlValue::Blob(*std::move(bytes));
  }
  return std::nullopt;
}

json HeadersToJson(const std::vector<Header>& headers) {
  json list = json::array();
  for (const Header& h : headers) list.push_back(json::array({h.name, h.value}));
  return list;
}

bool HeadersFromJson(const json& j, std::vector<Header>& out) {
  if (!j.is_array()) return false;
  for (const json& pair : j) {
    if (!pair.is_array() || pair.size() != 2 || !pair[0].is_string() ||
        !pair[1].is_string()) {
      return false;
    }
    out.push_back(Header{pair[0].get<std::string>(),
                         pair[1].get<std::string>()});
  }
  return true;
}

json BodyToJson(const std::optional<BodyPart>& body) {
  if (!body) return nullptr;
  return body->part;
}

// A body reference: its part name and size, both present or both null.
bool BodyFromJson(const json& part, const json& size,
                  std::optional<BodyPart>& out) {
  if (part.is_null() && size.is_null()) return true;
  if (!part.is_string() || !size.is_number_integer()) return false;
  out = BodyPart{part.get<std::string>(), size.get<int64_t>()};
  return out->size >= 0;
}

std::optional<json> Parse(std::string_view text) {
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return std::nullopt;
  return j;
}

bool IsInt(const json& j, const char* key) {
  return j.contains(key) && j[key].is_number_integer();
}

bool IsString(const json& j, const char* key) {
  return j.contains(key) && j[key].is_string();
}

}  // namespace

std::string EntryPartName(size_t index) {
  return absl::StrCat(index, ".json");
}

std::string BodyPartName(size_t index, bool request) {
  return absl::StrCat(index, request ? ".request_body" : ".response_body");
}

std::string MetaToJson(const BundleMeta& meta) {
  json parts = json::object();
  for (const auto& [name, sha] : meta.parts) parts[name] = sha;
  json j = {{"format", kFormatName},
            {"format_version", meta.format_version},
            {"origin", meta.origin},
            {"name", meta.name},
            {"namespace", meta.namespace_id},
            {"number_of_entries", meta.number_of_entries},
            {"version", meta.version},
            {"schema_version", meta.schema_version},
            {"parts", parts}};
  return j.dump(1);
}

absl::StatusOr<BundleMeta> MetaFromJson(std::string_view text) {
  std::optional<json> j = Parse(text);
  if (!j || !j->is_object()) {
    return absl::DataLossError("META.json is not a JSON object");
  }
  if (!IsString(*j, "format") || (*j)["format"] != kFormatName) {
    return absl::DataLossError(
        absl::StrCat("META.json: \"format\" is not \"", kFormatName, "\""));
  }
  for (const char* key : {"format_version", "namespace", "number_of_entries",
                          "version", "schema_version"}) {
    if (!IsInt(*j, key)) {
      return absl::DataLossError(
          absl::StrCat("META.json: \"", key, "\" is missing or not an integer"));
    }
  }
  for (const char* key : {"origin", "name"}) {
    if (!IsString(*j, key)) {
      return absl::DataLossError(
          absl::StrCat("META.json: \"", key, "\" is missing or not a string"));
    }
  }
  BundleMeta meta;
  meta.format_version = (*j)["format_version"].get<int64_t>();
  if (meta.format_version != kFormatVersion) {
    return absl::UnimplementedError(
        absl::StrCat("bundle format version ", meta.format_version,
                     " is not supported (this build reads ", kFormatVersion,
                     ")"));
  }
  meta.origin = (*j)["origin"].get<std::string>();
  meta.name = (*j)["name"].get<std::string>();
  meta.namespace_id = (*j)["namespace"].get<int64_t>();
  meta.number_of_entries = (*j)["number_of_entries"].get<int64_t>();
  meta.version = (*j)["version"].get<int64_t>();
  meta.schema_version = (*j)["schema_version"].get<int64_t>();
  if (meta.number_of_entries < 0) {
    return absl::DataLossError("META.json: negative number_of_entries");
  }
  if (!j->contains("parts") || !(*j)["parts"].is_object()) {
    return absl::DataLossError("META.json: \"parts\" is missing");
  }
  for (const auto& [name, sha] : (*j)["parts"].items()) {
    if (!sha.is_string() || sha.get<std::string>().size() != 64 ||
        !HexDecode(sha.get<std::string>())) {
      return absl::DataLossError(
          absl::StrCat("META.json: the SHA-256 of part ", name,
                       " is not 64 hex digits"));
    }
    meta.parts[name] = sha.get<std::string>();
  }
  return meta;
}

std::string SecurityInfoToJson(const std::map<int64_t, SecurityInfo>& map) {
  json entries = json::object();
  for (const auto& [id, info] : map) {
    entries[std::to_string(id)] = {{"hash", HexEncode(info.hash)},
                                   {"data", Base64Encode(info.data)},
                                   {"refcount", info.refcount}};
  }
  return json{{"security_map", entries}}.dump(1);
}

absl::StatusOr<std::map<int64_t, SecurityInfo>> SecurityInfoFromJson(
    std::string_view text) {
  std::optional<json> j = Parse(text);
  if (!j || !j->is_object() || !j->contains("security_map") ||
      !(*j)["security_map"].is_object()) {
    return absl::DataLossError(
        "SECURITY_INFO.json: no \"security_map\" object");
  }
  std::map<int64_t, SecurityInfo> map;
  for (const auto& [key, value] : (*j)["security_map"].items()) {
    SecurityInfo info;
    size_t used = 0;
    try {
      info.id = std::stoll(key, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    std::optional<std::string> hash, data;
    if (value.is_object() && IsString(value, "hash") &&
        IsString(value, "data") && IsInt(value, "refcount")) {
      hash = HexDecode(value["hash"].get<std::string>());
      data = Base64Decode(value["data"].get<std::string>());
      info.refcount = value["refcount"].get<int64_t>();
    }
    if (used != key.size() || key.empty() || !hash || !data) {
      return absl::DataLossError(absl::StrCat(
          "SECURITY_INFO.json: malformed security info \"", key, "\""));
    }
    info.hash = *std::move(hash);
    info.data = *std::move(data);
    map[info.id] = std::move(info);
  }
  return map;
}

std::string EntryToJson(const BundleEntry& e) {
  json j = json::object();
  for (const auto& [column, value] : e.entry.columns) {
    j[column] = ValueToJson(value);
  }
  j["request_headers"] = HeadersToJson(e.entry.request_headers);
  j["response_headers"] = HeadersToJson(e.entry.response_headers);
  j["response_url_list"] = e.entry.response_url_list;
  j["request_body"] = BodyToJson(e.request_body);
  j["request_bodysize"] =
      e.request_body ? json(e.request_body->size) : json(nullptr);
  j["response_body"] = BodyToJson(e.response_body);
  j["response_bodysize"] =
      e.response_body ? json(e.response_body->size) : json(nullptr);
  return j.dump(1);
}

absl::StatusOr<BundleEntry> EntryFromJson(std::string_view text) {
  std::optional<json> j = Parse(text);
  if (!j || !j->is_object()) {
    return absl::DataLossError("not a JSON object");
  }
  for (const char* key : kEntryKeys) {
    if (!j->contains(key)) {
      return absl::DataLossError(absl::StrCat("no \"", key, "\""));
    }
  }
  BundleEntry e;
  if (!HeadersFromJson((*j)["request_headers"], e.entry.request_headers) ||
      !HeadersFromJson((*j)["response_headers"], e.entry.response_headers)) {
    return absl::DataLossError("malformed headers");
  }
  const json& urls = (*j)["response_url_list"];
  if (!urls.is_array()) return absl::DataLossError("malformed url list");
  for (const json& url : urls) {
    if (!url.is_string()) return absl::DataLossError("malformed url list");
    e.entry.response_url_list.push_back(url.get<std::string>());
  }
  if (!BodyFromJson((*j)["request_body"], (*j)["request_bodysize"],
                    e.request_body) ||
      !BodyFromJson((*j)["response_body"], (*j)["response_bodysize"],
                    e.response_body)) {
    return absl::DataLossError("malformed body reference");
  }
  for (const auto& [key, value] : j->items()) {
    if (IsEntryKey(key)) continue;
    std::optional<SqlValue> v = ValueFromJson(value);
    if (!v) {
      return absl::DataLossError(
          absl::StrCat("column \"", key, "\" has a malformed value"));
    }
    e.entry.columns[key] = *std::move(v);
  }
  for (const char* column : {"request_method", "request_url_no_query",
                             "request_url_query", "response_type"}) {
    if (e.entry.columns.count(column) == 0) {
      return absl::DataLossError(absl::StrCat("no column \"", column, "\""));
    }
  }
  return e;
}

}  // namespace quiesce::bundle
