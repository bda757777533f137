#include "snappy_frame.h"

#include <algorithm>
#include <array>
#include <cstddef>

namespace quiesce::hostsim {

namespace {

constexpr size_t kMaxChunkData = 65536;
constexpr char kUncompressedChunk = 0x01;
constexpr char kStreamIdentifier[] = "\xff\x06\x00\x00sNaPpY";

constexpr std::array<uint32_t, 256> MakeCrcTable() {
  std::array<uint32_t, 256> table{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t crc = i;
    for (int bit = 0; bit < 8; ++bit) {
      crc = (crc & 1) ? (crc >> 1) ^ 0x82F63B78u : crc >> 1;
    }
    table[i] = crc;
  }
  return table;
}

constexpr std::array<uint32_t, 256> kCrcTable = MakeCrcTable();

void AppendLittleEndian(std::string& out, uint32_t value, int bytes) {
  for (int i = 0; i < bytes; ++i) {
    out.push_back(static_cast<char>((value >> (8 * i)) & 0xFF));
  }
}

// The framing format stores CRCs masked, so that data holding its own CRC
// does not checksum to a fixed point.
uint32_t Masked(uint32_t crc) {
  return ((crc >> 15) | (crc << 17)) + 0xA282EAD8u;
}

}  // namespace

uint32_t Crc32c(std::string_view data) {
  uint32_t crc = 0xFFFFFFFFu;
  for (unsigned char c : data) {
    crc = kCrcTable[(crc ^ c) & 0xFF] ^ (crc >> 8);
  }
  return crc ^ 0xFFFFFFFFu;
}

std::string SnappyFramed(std::string_view data) {
  const size_t chunks = (data.size() + kMaxChunkData - 1) / kMaxChunkData;
  std::string out(kStreamIdentifier, sizeof(kStreamIdentifier) - 1);
  out.reserve(out.size() + chunks * 8 + data.size());
  for (size_t at = 0; at < data.size(); at += kMaxChunkData) {
    const std::string_view piece =
        data.substr(at, std::min(kMaxChunkData, data.size() - at));
    out.push_back(kUncompressedChunk);
    AppendLittleEndian(out, static_cast<uint32_t>(piece.size() + 4), 3);
    AppendLittleEndian(out, Masked(Crc32c(piece)), 4);
    out.append(piece);
  }
  return out;
}

}  // namespace quiesce::hostsim
