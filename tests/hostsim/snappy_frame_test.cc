// The simulator's body files: Snappy framing-format streams of uncompressed
// chunks, laid out as the format specifies, with CRC-32C checksums.
#include "snappy_frame.h"

#include <gtest/gtest.h>

#include <string>

namespace quiesce::hostsim {
namespace {

uint32_t ReadLittleEndian(const std::string& s, size_t at, int bytes) {
  uint32_t value = 0;
  for (int i = 0; i < bytes; ++i) {
    value |= static_cast<uint32_t>(static_cast<unsigned char>(s[at + i]))
             << (8 * i);
  }
  return value;
}

TEST(SnappyFrame, Crc32cKnownAnswers) {
  // RFC 3720 (iSCSI) B.4 and the usual check value.
  EXPECT_EQ(Crc32c("123456789"), 0xE3069283u);
  EXPECT_EQ(Crc32c(std::string(32, '\0')), 0x8A9136AAu);
  EXPECT_EQ(Crc32c(std::string(32, '\xff')), 0x62A8AB43u);
}

TEST(SnappyFrame, ChunksOfAtMost64KiBAfterTheStreamIdentifier) {
  std::string data(65536 + 100, '\0');
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>(i * 7);
  const std::string framed = SnappyFramed(data);
  ASSERT_EQ(framed.substr(0, 10), std::string("\xff\x06\x00\x00sNaPpY", 10));
  size_t at = 10;
  std::string payload;
  while (at < framed.size()) {
    ASSERT_EQ(framed[at], '\x01');  // uncompressed data
    const uint32_t length = ReadLittleEndian(framed, at + 1, 3);
    ASSERT_GE(length, 4u);
    ASSERT_LE(length - 4, 65536u);
    const std::string piece = framed.substr(at + 8, length - 4);
    const uint32_t crc = Crc32c(piece);
    EXPECT_EQ(ReadLittleEndian(framed, at + 4, 4),
              ((crc >> 15) | (crc << 17)) + 0xA282EAD8u);
    payload += piece;
    at += 4 + length;
  }
  EXPECT_EQ(at, framed.size());
  EXPECT_EQ(payload, data);
  EXPECT_EQ(SnappyFramed(""), std::string("\xff\x06\x00\x00sNaPpY", 10));
}

}  // namespace
}  // namespace quiesce::hostsim
