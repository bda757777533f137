// Hashes and encodings the bundle code needs, over OpenSSL's libcrypto:
// SHA-256 of bundle parts (hex), Gecko's 8-byte SHA-1 prefixes, base64 for
// binary values in JSON, and random bytes for new body ids.
#ifndef QUIESCE_TOOLS_BUNDLE_DIGEST_H_
#define QUIESCE_TOOLS_BUNDLE_DIGEST_H_

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace quiesce::bundle {

// An incremental SHA-256. Not copyable; one per stream.
class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;

  void Update(const void* data, size_t size);
  void Update(std::string_view data) { Update(data.data(), data.size()); }
  // The digest as 64 lower-case hex digits; the object is spent afterwards.
  std::string FinishHex();

 private:
  struct State;
  std::unique_ptr<State> state_;  // OpenSSL's EVP context
};

std::string Sha256Hex(std::string_view data);

// The first 8 bytes of SHA-1(data): how Gecko's Cache API hashes request
// URLs (request_url_no_query_hash, request_url_query_hash) and security
// info blobs (security_info.hash).
std::string GeckoHash(std::string_view data);

std::string HexEncode(std::string_view bytes);
std::optional<std::string> HexDecode(std::string_view hex);
std::string Base64Encode(std::string_view bytes);
std::optional<std::string> Base64Decode(std::string_view text);

// Cryptographically random bytes (OpenSSL's RAND_bytes); nullopt when the
// generator fails.
std::optional<std::string> RandomBytes(size_t size);

}  // namespace quiesce::bundle

#endif  // QUIESCE_TOOLS_BUNDLE_DIGEST_H_
