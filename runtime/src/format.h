// The .mtan container: a FlatBuffer (schema/mtan.fbs) followed by a 16-byte
// footer. Shared by the runtime (which checks it) and the host writer (which
// seals files with it), so there is one formula for the checksum.
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

namespace mtan {

constexpr char kFileIdentifier[4] = {'M', 'T', 'A', 'N'};
constexpr char kFooterMagic[4] = {'M', 'T', 'X', 'H'};     // format 1.2: XXH64
constexpr char kOldFooterMagic[4] = {'M', 'T', 'C', 'K'};  // 1.0 and 1.1
constexpr size_t kFooterBytes = 16;

struct Footer {
  uint64_t checksum;         // Checksum64 (XXH64) of the FlatBuffer bytes
  uint32_t flatbuffer_bytes; // length of the FlatBuffer that precedes the footer
  char magic[4];             // kFooterMagic
};
static_assert(sizeof(Footer) == kFooterBytes, "footer layout");

// XXH64 (seed 0) of the FlatBuffer bytes, from Debian's libxxhash-dev
// inlined (no library to link, no heap), so outside tools can check a file:
// `head -c <flatbuffer_bytes> model.mtan | xxhsum -H64` prints the footer's
// checksum. Not cryptographic: authenticity needs a signature checked by the
// app. Format 1.2 changed it from an own XXH64-like mix; files sealed with
// that one carry kOldFooterMagic and are refused with MTAN_ERROR_VERSION.
inline uint64_t Checksum64(const uint8_t* data, size_t n) { return XXH64(data, n, 0); }

inline Footer MakeFooter(const uint8_t* flatbuffer, size_t n) {
  Footer f;
  f.checksum = Checksum64(flatbuffer, n);
  f.flatbuffer_bytes = static_cast<uint32_t>(n);
  memcpy(f.magic, kFooterMagic, 4);
  return f;
}

}  // namespace mtan
