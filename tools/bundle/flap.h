// Appelflap's signed cache bundles (".flap"): read and verify one exactly as
// Appelflap's reader does, turn it into a quiesce bundle for the injection
// plan, and pack one from a database image. docs/flap.md has the rules and
// where each is tested; the format is Appelflap's (format version 4).
//
// Everything streams: a .flap is read front to back once, each JSON entry
// is held only up to its size limit, bodies pass through in 64 KiB chunks.
// Errors: a bundle that breaks a rule is FailedPrecondition with the message
// "<entry>: <reason>" (the first violation); I/O and internal failures are
// other codes.
#ifndef QUIESCE_TOOLS_BUNDLE_FLAP_H_
#define QUIESCE_TOOLS_BUNDLE_FLAP_H_

#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "cache_bundle.h"

namespace quiesce::bundle::flap {

inline constexpr int64_t kFormatVersion = 4;  // Appelflap's DUMPMETA_VERSION
// Appelflap's schema (CACHE_TABLE_DDL): what a .flap's entries hold.
inline constexpr int64_t kAppelflapSchema = 28;
inline constexpr char kDefaultAppId[] = "org.nontrivialpursuit.appelflap";
inline constexpr char kSignatureAlgorithm[] = "SHA256withECDSA";

// Appelflap's size limits (ingeblikt/Const.kt), in bytes.
inline constexpr size_t kMaxCertChain = 8192;
inline constexpr size_t kMaxMeta = 8192;
inline constexpr size_t kMaxSecurityInfo = 8192 * 1024;
inline constexpr size_t kMaxEntryJson = 512 * 1024;
inline constexpr size_t kMaxSignature = 1024;

// True when the file starts with a ZIP local header whose entry is
// CERTCHAIN.pem: a .flap, by content and not by name.
bool LooksLikeFlap(const std::filesystem::path& path);

struct FlapEntryInfo {
  int64_t index = 0;
  std::string url;  // request_url_no_query + request_url_query
  std::optional<int64_t> request_bodysize;
  std::optional<int64_t> response_bodysize;
  bool opaque = false;  // a padding size or response_type 4
};

struct FlapInfo {
  std::string origin;
  std::string name;
  std::string namespace_name;  // "CACHE" or "SWORK"
  int64_t number_of_entries = 0;
  std::optional<int64_t> user_version;
  std::optional<int64_t> last_server_timestamp;
  std::string nonce;
  // SWORK: the service-worker registration (serviceworker.txt stanza).
  std::optional<int64_t> sw_version;
  std::vector<std::string> sw_stanza;
  std::string device_cn;      // the signing node
  std::string deployment_cn;  // the app id
  bool verified = false;      // chain and signatures were checked
  int64_t security_infos = 0;
  int64_t body_bytes = 0;
  std::vector<FlapEntryInfo> entries;
  std::string final_digest;  // the last digest-chain value, hex
  // Effective version: user_version, else last_server_timestamp.
  std::optional<int64_t> version() const {
    return user_version ? user_version : last_server_timestamp;
  }
};

struct ReadOptions {
  // PEM of the trusted root certificate (replaces Appelflap's built-in
  // one). Required unless verify is false.
  std::string trusted_root_pem;
  std::string app_id = kDefaultAppId;
  // false: skip the certificate chain, its CNs and every signature (the
  // structure, sizes, digest-independent JSON rules are still checked).
  bool verify = true;
  // Total body bytes accepted (Appelflap has no limit; this one keeps a
  // zip bomb from filling a disk). Each body's size is declared in its
  // entry and checked exactly.
  int64_t max_body_bytes = int64_t{16} << 30;
  // Consumers, called as the entries are read (before the signature after
  // them is checked: use what they got only when ReadFlap succeeds).
  std::function<absl::Status(const std::string& security_info_json)>
      on_security_info;
  std::function<absl::Status(int64_t index, const std::string& entry_json)>
      on_entry;
  std::function<absl::Status(int64_t index, bool request,
                             std::string_view chunk)>
      on_body_chunk;
};

// Reads and checks the whole .flap: ZIP structure and entry order, size
// limits, JSON shapes, the digest chain, every signature, the certificate
// chain to the trusted root and its CNs, body sizes and body ids.
absl::StatusOr<FlapInfo> ReadFlap(const std::filesystem::path& path,
                                  const ReadOptions& options);

// Reads a .flap (as ReadFlap) and writes it as a quiesce bundle at `out`
// (format of docs/bundles.md: Appelflap's columns, schema 28), so that the
// injection plan takes it as it takes any bundle. `scratch` is a directory
// for the bodies while they are read.
absl::StatusOr<FlapInfo> ConvertFlap(const std::filesystem::path& flap,
                                     const ReadOptions& options,
                                     const std::filesystem::path& scratch,
                                     const std::filesystem::path& out);

struct FlapPackOptions {
  int64_t namespace_id = kDefaultNamespace;
  // Keep the headers Appelflap drops by default (request Authorization,
  // Proxy-Authorization, Cookie; response Set-Cookie).
  bool keep_credential_headers = false;
  std::optional<int64_t> user_version;
  std::string device_key_pem;  // PKCS#8 or SEC1 EC P-256 private key
  std::string chain_pem;       // device, deployment, root certificates
  bool replace_existing = false;  // --force: an existing `out` is replaced
  std::function<bool(const MissingBody&)> on_missing_body;
};

struct FlapPackResult {
  int64_t entry_count = 0;
  int64_t body_bytes = 0;
  int64_t schema_version = 0;         // of the image packed from
  std::vector<std::string> dropped;   // what v28 cannot carry
  int64_t reframed_bodies = 0;        // rewritten as compressed chunks
  std::string final_digest;
};

// Packs one cache of `image` (a consistent image of caches.sqlite) with
// the bodies under `cache_dir`/morgue into a signed .flap at `out`
// (written beside it, then renamed; `out` must not exist).
absl::StatusOr<FlapPackResult> PackFlap(sqlite3* image,
                                        const std::filesystem::path& cache_dir,
                                        std::string_view origin,
                                        std::string_view cache_name,
                                        const FlapPackOptions& options,
                                        const std::filesystem::path& out);

// Rewrites a Snappy framing-format body so that it holds only the chunks
// Gecko's reader accepts (stream identifier, compressed chunks): an
// uncompressed chunk becomes a compressed one holding one literal; padding
// and skippable chunks are dropped. nullopt when `framed` is not a valid
// framed stream. Unchanged bytes when it already is as Gecko writes.
std::optional<std::string> GeckoReadableFraming(std::string_view framed);

}  // namespace quiesce::bundle::flap

#endif  // QUIESCE_TOOLS_BUNDLE_FLAP_H_
