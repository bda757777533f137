#include "codec.h"

#include <algorithm>
#include <exception>
#include <set>
#include <vector>

namespace quiesce::control {
namespace {

// The deepest nesting of arrays and objects in `text`, counted outside
// strings; stops counting past kMaxDepth.
int NestingDepth(std::string_view text) {
  int depth = 0, deepest = 0;
  bool in_string = false, escaped = false;
  for (const char c : text) {
    if (in_string) {
      if (escaped) escaped = false;
      else if (c == '\\') escaped = true;
      else if (c == '"') in_string = false;
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      deepest = std::max(deepest, ++depth);
      if (deepest > kMaxDepth) break;
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return deepest;
}

// An integer id, when `value` is one in range.
std::optional<int64_t> IdOf(const json& value) {
  if (!value.is_number_integer()) return std::nullopt;
  const int64_t id = value.is_number_unsigned()
                         ? static_cast<int64_t>(std::min<uint64_t>(
                               value.get<uint64_t>(), uint64_t(kMaxId) + 1))
                         : value.get<int64_t>();
  if (id < 0 || id > kMaxId) return std::nullopt;
  return id;
}

// Compact JSON; bad UTF-8 becomes U+FFFD instead of an exception. Messages
// are put together by hand around it so that "id" always comes first, which
// makes a stream easy to read and to grep.
std::string DumpValue(const json& value) {
  return value.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string IdText(std::optional<int64_t> id) {
  return id ? std::to_string(*id) : std::string("null");
}

// The last resort when even building a reply failed (out of memory).
std::string InternalErrorLine(std::optional<int64_t> id) {
  try {
    return "{\"id\":" + IdText(id) +
           ",\"ok\":false,\"error\":{\"code\":\"internal\","
           "\"message\":\"could not encode the reply\"}}\n";
  } catch (...) {
    return {};
  }
}

}  // namespace

bool DecodeRequest(std::string_view line, Request* out, DecodeError* error) {
  try {
    *error = DecodeError{};
    if (NestingDepth(line) > kMaxDepth) {
      error->message = "request nested deeper than " +
                       std::to_string(kMaxDepth) + " levels";
      return false;
    }
    // Keys seen in each open object, innermost last: a key given twice
    // is refused rather than resolved (JSON leaves it undefined, and
    // "dry_run":true,"dry_run":false must not mean false).
    std::vector<std::set<std::string>> keys;
    std::optional<std::string> duplicate;
    const json::parser_callback_t check =
        [&](int, json::parse_event_t event, json& parsed) {
          switch (event) {
            case json::parse_event_t::object_start:
              keys.emplace_back();
              break;
            case json::parse_event_t::object_end:
              if (!keys.empty()) keys.pop_back();
              break;
            case json::parse_event_t::key:
              if (!keys.empty() && parsed.is_string()) {
                const std::string& key = parsed.get_ref<const std::string&>();
                if (!keys.back().insert(key).second && !duplicate) {
                  duplicate = key;
                }
              }
              break;
            default:
              break;
          }
          return true;
        };
    json j = json::parse(line, check, /*allow_exceptions=*/false);
    if (j.is_discarded()) {
      error->message = "not valid JSON";
      return false;
    }
    if (!j.is_object()) {
      error->message = "a request is a JSON object";
      return false;
    }
    if (duplicate) {
      if (const auto id_it = j.find("id"); id_it != j.end()) {
        error->id = IdOf(*id_it);
      }
      error->message = "the key \"" + *duplicate +
                       "\" appears more than once in an object";
      if (*duplicate == "id") error->id.reset();
      return false;
    }
    const auto id_it = j.find("id");
    if (id_it == j.end()) {
      error->message = "missing \"id\"";
      return false;
    }
    const std::optional<int64_t> id = IdOf(*id_it);
    if (!id) {
      error->message = "\"id\" must be an integer from 0 to 2^53";
      return false;
    }
    error->id = id;
    const auto op_it = j.find("op");
    if (op_it == j.end() || !op_it->is_string()) {
      error->message = "missing \"op\" (a string)";
      return false;
    }
    int64_t fds = 0;
    if (const auto fds_it = j.find("fds"); fds_it != j.end()) {
      if (!fds_it->is_number_integer() ||
          (fds_it->is_number_unsigned() &&
           fds_it->get<uint64_t>() > uint64_t(kMaxRequestFds)) ||
          fds_it->get<int64_t>() < 0 ||
          fds_it->get<int64_t>() > kMaxRequestFds) {
        error->message = "\"fds\" must be an integer from 0 to " +
                         std::to_string(kMaxRequestFds);
        return false;
      }
      fds = fds_it->get<int64_t>();
    }
    out->id = *id;
    out->op = op_it->get<std::string>();
    out->fds = fds;
    out->args = std::move(j);
    return true;
  } catch (const std::exception&) {
    error->message = "could not decode the request";
    return false;
  }
}

std::string EncodeRequest(int64_t id, std::string_view op, const json& args,
                          int64_t fds) {
  try {
    json rest = args.is_object() ? args : json::object();
    rest.erase("id");
    rest.erase("op");
    rest.erase("fds");
    std::string line = "{\"id\":" + std::to_string(id) +
                       ",\"op\":" + DumpValue(json(op));
    if (fds > 0) line += ",\"fds\":" + std::to_string(fds);
    if (!rest.empty()) {
      const std::string fields = DumpValue(rest);
      line += "," + fields.substr(1, fields.size() - 2);
    }
    return line + "}\n";
  } catch (const std::exception&) {
    return {};
  }
}

std::string EncodeOk(int64_t id, const json& result) {
  try {
    return "{\"id\":" + std::to_string(id) + ",\"ok\":true,\"result\":" +
           DumpValue(result) + "}\n";
  } catch (const std::exception&) {
    return InternalErrorLine(id);
  }
}

std::string EncodeError(std::optional<int64_t> id, ErrorCode code,
                        std::string_view message) {
  try {
    const json error = {{"code", ErrorCodeName(code)}, {"message", message}};
    return "{\"id\":" + IdText(id) + ",\"ok\":false,\"error\":" +
           DumpValue(error) + "}\n";
  } catch (const std::exception&) {
    return InternalErrorLine(id);
  }
}

std::string EncodeEvent(int64_t id, std::string_view event,
                        const json& fields) {
  try {
    std::string line = "{\"id\":" + std::to_string(id) +
                       ",\"event\":" + DumpValue(json(event));
    if (fields.is_object() && !fields.empty()) {
      // The fields' own object, braces dropped, after id and event.
      const std::string rest = DumpValue(fields);
      line += "," + rest.substr(1, rest.size() - 2);
    }
    return line + "}\n";
  } catch (const std::exception&) {
    return InternalErrorLine(id);
  }
}

namespace {

// A line the peer sent that is not a message: kBadRequest, saying why.
Error Bad(const char* why) { return Error{ErrorCode::kBadRequest, why}; }

}  // namespace

Result<Message> DecodeMessage(std::string_view line) {
  try {
    if (NestingDepth(line) > kMaxDepth) {
      return Bad("message nested too deeply");
    }
    json j = json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded() || !j.is_object()) {
      return Bad("not a JSON object");
    }
    Message m;
    if (const auto it = j.find("id"); it != j.end() && !it->is_null()) {
      m.id = IdOf(*it);
      if (!m.id) {
        return Bad("bad \"id\"");
      }
    }
    if (const auto it = j.find("event"); it != j.end()) {
      if (!it->is_string() || !m.id) {
        return Bad("an event needs a string \"event\" and an \"id\"");
      }
      m.is_event = true;
      m.event = it->get<std::string>();
      m.body = std::move(j);
      return m;
    }
    const auto ok = j.find("ok");
    if (ok == j.end() || !ok->is_boolean()) {
      return Bad("neither a reply (\"ok\") nor an event");
    }
    m.ok = ok->get<bool>();
    if (m.ok) {
      const auto result = j.find("result");
      m.result = result == j.end() ? json::object() : std::move(*result);
    } else {
      const auto e = j.find("error");
      if (e == j.end() || !e->is_object() || !e->contains("code") ||
          !(*e)["code"].is_string()) {
        return Bad("an error reply without an error code");
      }
      m.error_code = (*e)["code"].get<std::string>();
      if (const auto msg = e->find("message");
          msg != e->end() && msg->is_string()) {
        m.error_message = msg->get<std::string>();
      }
    }
    return m;
  } catch (const std::exception&) {
    return Bad("could not decode the message");
  }
}

}  // namespace quiesce::control
