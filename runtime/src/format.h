// The .mtan container: a FlatBuffer (schema/mtan.fbs) followed by a 16-byte
// footer. Shared by the runtime (which checks it) and the host writer (which
// seals files with it), so there is one formula for the checksum.
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <string.h>

namespace mtan {

constexpr char kFileIdentifier[4] = {'M', 'T', 'A', 'N'};
constexpr char kFooterMagic[4] = {'M', 'T', 'C', 'K'};
constexpr size_t kFooterBytes = 16;

struct Footer {
  uint64_t checksum;         // Checksum64 of the FlatBuffer bytes
  uint32_t flatbuffer_bytes; // length of the FlatBuffer that precedes the footer
  char magic[4];             // kFooterMagic
};
static_assert(sizeof(Footer) == kFooterBytes, "footer layout");

// A fast 64-bit checksum for telling a corrupted download from a good file.
// Not cryptographic: authenticity needs a signature checked by the app.
inline uint64_t Checksum64(const uint8_t* data, size_t n) {
  constexpr uint64_t kP1 = 0x9E3779B185EBCA87ull, kP2 = 0xC2B2AE3D27D4EB4Full;
  uint64_t lanes[4] = {kP1, kP2, kP1 ^ kP2, kP2 - kP1};
  size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    for (int l = 0; l < 4; ++l) {
      uint64_t w;
      memcpy(&w, data + i + 8 * l, 8);
      uint64_t h = lanes[l] + w * kP2;
      lanes[l] = ((h << 31) | (h >> 33)) * kP1;
    }
  }
  uint64_t h = n * kP1;
  for (int l = 0; l < 4; ++l) h = (h ^ lanes[l]) * kP2 + (h >> 29);
  for (; i < n; ++i) h = (h ^ data[i]) * kP1;
  h ^= h >> 33;
  h *= kP2;
  h ^= h >> 29;
  return h;
}

}  // namespace mtan
