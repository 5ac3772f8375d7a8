// CRC-32C (Castagnoli, polynomial 0x1EDC6F41, reflected; RFC 3720 appendix B.4) and TensorFlow's masked
// form used by TFRecord framing. Also checks checkpoint files (checkpoint_store.h).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace facetrain {

// CRC-32C of n bytes. Pass a previous result as `crc` to continue over a following chunk:
// crc32c(b, nb, crc32c(a, na)) == crc32c(a ++ b). crc32c("123456789") == 0xE3069283.
uint32_t crc32c(const void* data, size_t n, uint32_t crc = 0);
inline uint32_t crc32c(std::string_view bytes, uint32_t crc = 0) { return crc32c(bytes.data(), bytes.size(), crc); }

// TFRecord's mask, so that a CRC stored next to the data it covers does not look like data:
// ((crc >> 15) | (crc << 17)) + 0xa282ead8 (all mod 2^32), and its inverse.
constexpr uint32_t kCrcMaskDelta = 0xa282ead8u;
inline uint32_t mask_crc32c(uint32_t crc) { return ((crc >> 15) | (crc << 17)) + kCrcMaskDelta; }
inline uint32_t unmask_crc32c(uint32_t masked) {
  const uint32_t rot = masked - kCrcMaskDelta;
  return (rot >> 17) | (rot << 15);
}

// The portable table path of crc32c() (slicing-by-8), whatever the CPU (exposed so tests can check both paths).
uint32_t crc32c_portable(const void* data, size_t n, uint32_t crc = 0);

// True when crc32c() runs on the SSE4.2 CRC32 instruction (false: the portable table).
bool crc32c_uses_hardware();

}  // namespace facetrain
