// Gecko keeps Cache API bodies in the Snappy framing format
// (SnappyCompressOutputStream). The simulator's bodies are random bytes,
// which Snappy cannot shrink, and for those the format stores "uncompressed
// data" chunks: that is all this writes, so no Snappy library is needed and
// any framing-format reader (Gecko's included) reads the files back.
#ifndef QUIESCE_TOOLS_HOSTSIM_SNAPPY_FRAME_H_
#define QUIESCE_TOOLS_HOSTSIM_SNAPPY_FRAME_H_

#include <cstdint>
#include <string>
#include <string_view>

namespace quiesce::hostsim {

// The stream identifier chunk, then `data` in uncompressed chunks of at
// most 64 KiB, each with the masked CRC-32C the format requires.
std::string SnappyFramed(std::string_view data);

// CRC-32C (Castagnoli), as the framing format checksums chunks.
uint32_t Crc32c(std::string_view data);

}  // namespace quiesce::hostsim

#endif  // QUIESCE_TOOLS_HOSTSIM_SNAPPY_FRAME_H_
