// SHA-256 for snapshot checksums. Host code may not link libcrypto (the shim
// brings no shared library into the host), so it has its own, checked
// against known vectors and OpenSSL in tests/sha256_test.cc.
#ifndef QUIESCE_VFS_SHA256_H_
#define QUIESCE_VFS_SHA256_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>

namespace quiesce {

class Sha256 {
 public:
  // Uses the CPU's SHA extensions when it has them (about ten times
  // faster); `portable` forces the plain code, for tests that compare.
  explicit Sha256(bool portable = false);
  void Update(const void* data, size_t size);
  std::array<uint8_t, 32> Finish();
  std::string FinishHex();

 private:
  void Blocks(const uint8_t* data, size_t count);

  const bool sha_ni_;
  std::array<uint32_t, 8> state_;
  std::array<uint8_t, 64> buffer_{};
  size_t buffered_ = 0;
  uint64_t total_ = 0;
};

}  // namespace quiesce

#endif  // QUIESCE_VFS_SHA256_H_
