#include "web_origin.h"

#include <cctype>

namespace quiesce::bundle {
namespace {

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// QuotaManager replaces control characters and / : * ? " < > | \ with '+'.
std::string Sanitise(std::string_view origin) {
  std::string out(origin);
  for (char& c : out) {
    const unsigned char u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f || std::string_view("/:*?\"<>|\\").find(c) !=
                                     std::string_view::npos) {
      c = '+';
    }
  }
  return out;
}

bool EndsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() &&
         s.substr(s.size() - suffix.size()) == suffix;
}

}  // namespace

std::optional<WebOrigin> ParseOrigin(std::string_view url) {
  const size_t colon = url.find("://");
  if (colon == std::string_view::npos) return std::nullopt;
  const std::string scheme = Lower(url.substr(0, colon));
  if (scheme != "http" && scheme != "https") return std::nullopt;
  std::string_view rest = url.substr(colon + 3);
  rest = rest.substr(0, rest.find_first_of("/?#"));
  if (rest.empty() || rest.find('@') != std::string_view::npos) {
    return std::nullopt;  // no host, or credentials in the URL
  }
  // The port follows the last ':' after an IPv6 literal's ']'.
  std::string_view host = rest, port;
  const size_t bracket = rest.rfind(']');
  const size_t port_colon = rest.rfind(':');
  if (port_colon != std::string_view::npos &&
      (bracket == std::string_view::npos || port_colon > bracket)) {
    host = rest.substr(0, port_colon);
    port = rest.substr(port_colon + 1);
    if (port.empty() || port.size() > 5 ||
        port.find_first_not_of("0123456789") != std::string_view::npos) {
      return std::nullopt;
    }
    while (port.size() > 1 && port.front() == '0') port.remove_prefix(1);
  }
  if (host.empty() || (host.front() == '[') != (host.back() == ']')) {
    return std::nullopt;
  }
  if ((scheme == "http" && port == "80") ||
      (scheme == "https" && port == "443")) {
    port = {};
  }
  WebOrigin o;
  // Appended piece by piece: `scheme + "://" + ...` makes GCC 12 at -O2+
  // report a false -Wrestrict (issue #17).
  o.origin.append(scheme).append("://").append(Lower(host));
  if (!port.empty()) o.origin.append(":").append(port);
  o.directory = Sanitise(o.origin);
  return o;
}

std::vector<WebOrigin> OriginCandidates(std::string_view arg,
                                          std::string* error) {
  if (auto o = ParseOrigin(arg)) return {*o};
  const std::string example =
      "an origin, like http://127.0.0.1:8765 (scheme, host, and the port "
      "unless it is the scheme's default), or any URL of it";
  // host:PORT without a scheme (a bare name is more likely a mistake, like
  // a cache name given as the origin).
  const size_t colon = arg.rfind(':');
  if (arg.find("://") == std::string_view::npos && colon != std::string_view::npos &&
      colon + 1 < arg.size() &&
      arg.find_first_not_of("0123456789", colon + 1) == std::string_view::npos) {
    auto http = ParseOrigin("http://" + std::string(arg));
    auto https = ParseOrigin("https://" + std::string(arg));
    if (http && https && std::string(arg).find('/') == std::string::npos) {
      return {*http, *https};
    }
  }
  *error = "--origin \"" + std::string(arg) + "\" is not an origin: give " +
           example;
  return {};
}

bool IsOriginCacheDatabase(const std::string& db_path,
                           const WebOrigin& origin,
                           const std::string& profile) {
  const std::string tail =
      "/storage/default/" + origin.directory + "/cache/caches.sqlite";
  if (!profile.empty()) {
    std::string dir = profile;
    while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
    return db_path == dir + tail;
  }
  return EndsWith(db_path, tail);
}

}  // namespace quiesce::bundle
