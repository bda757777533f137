// Which live caches.sqlite belongs to a web origin: Gecko keeps an origin's
// Cache API storage under <profile>/storage/default/<origin dir>/cache/,
// the origin dir being the origin with the characters that are illegal in
// file names replaced by '+' (QuotaManager's sanitised origin string).
// The one such mapping: quiescectl finds a live origin's database with it
// and hostsim lays out its simulated profile with it.
#ifndef QUIESCE_TOOLS_BUNDLE_WEB_ORIGIN_H_
#define QUIESCE_TOOLS_BUNDLE_WEB_ORIGIN_H_

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace quiesce::bundle {

struct WebOrigin {
  std::string origin;      // "http://127.0.0.1:8080": scheme://host[:port]
  std::string directory;   // "http+++127.0.0.1+8080"
};

// Parses an origin or any URL of it ("http://Example.com:80/a?b" is the
// origin "http://example.com"): scheme and host lower-cased, the scheme's
// default port dropped, path, query and fragment ignored. Only http and
// https have Cache API storage. nullopt for anything else.
std::optional<WebOrigin> ParseOrigin(std::string_view url);

// What an --origin argument may name: an origin or URL (one candidate), or
// a host and a port without a scheme ("127.0.0.1:8765": http and https are
// both candidates, and the one the browser has open is taken). Empty, with
// *error saying what to write and giving an example, for anything else.
std::vector<WebOrigin> OriginCandidates(std::string_view arg,
                                          std::string* error);

// Whether `db_path` is the caches.sqlite of `origin`: ends with
// /storage/default/<origin dir>/cache/caches.sqlite. With `profile`
// non-empty, it must also lie in that profile directory (canonical paths).
bool IsOriginCacheDatabase(const std::string& db_path,
                           const WebOrigin& origin,
                           const std::string& profile);

}  // namespace quiesce::bundle

#endif  // QUIESCE_TOOLS_BUNDLE_WEB_ORIGIN_H_
