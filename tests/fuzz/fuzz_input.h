// Reads a fuzzer's input as a stream of small choices. Past the end every
// choice is 0, so any input is a complete program.
#ifndef QUIESCE_TESTS_FUZZ_FUZZ_INPUT_H_
#define QUIESCE_TESTS_FUZZ_FUZZ_INPUT_H_

#include <cstddef>
#include <cstdint>

namespace quiesce::fuzz {

class FuzzInput {
 public:
  FuzzInput(const uint8_t* data, size_t size) : data_(data), size_(size) {}

  bool empty() const { return at_ >= size_; }
  uint8_t Byte() { return at_ < size_ ? data_[at_++] : 0; }
  // A choice in [0, n).
  uint32_t Below(uint32_t n) { return n == 0 ? 0 : Byte() % n; }
  bool Bit() { return (Byte() & 1) != 0; }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t at_ = 0;
};

}  // namespace quiesce::fuzz

#endif  // QUIESCE_TESTS_FUZZ_FUZZ_INPUT_H_
