// CRC-32C: the SSE4.2 CRC32 instruction when the CPU has it, else slicing-by-8 tables.
// Why not a library: on Debian 12 `apt-cache search crc32c` finds only python3-crc32c (no C/C++ package);
// Boost.CRC (crc_optimal<32, 0x1EDC6F41, ~0, ~0, true, true>) would pull the 138 MB libboost1.74-dev into the
// build for a byte-at-a-time table, ~20x slower than the instruction that every x86-64 CPU since 2008 has;
// libcrcutil-dev is a generic CRC framework that would add a runtime library for this one polynomial. The
// instruction comes with the compiler (<nmmintrin.h>), so there is nothing to install.
#include "core/crc32c.h"

#include <array>
#include <cstring>

#if defined(__x86_64__) || defined(__i386__)
#include <nmmintrin.h>
#define FACETRAIN_CRC32C_X86 1
#endif

namespace facetrain {
namespace {

constexpr uint32_t kReflectedPolynomial = 0x82F63B78u;  // 0x1EDC6F41 bit-reversed

// Slicing-by-8 tables (Intel's technique, as in the Linux kernel's crc32c): tables[k][b] is the CRC of byte b
// followed by k zero bytes, so eight input bytes are folded per step. Measured on this machine: 0.84 GB/s
// against 0.15 GB/s byte-wise, and 3.1 GB/s for the SSE4.2 path below.
using Tables = std::array<std::array<uint32_t, 256>, 8>;

Tables make_tables() {
  Tables t{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ kReflectedPolynomial : c >> 1;
    t[0][i] = c;
  }
  for (uint32_t i = 0; i < 256; ++i) {
    for (int k = 1; k < 8; ++k) t[k][i] = (t[k - 1][i] >> 8) ^ t[0][t[k - 1][i] & 0xFF];
  }
  return t;
}

uint32_t crc32c_table(const uint8_t* p, size_t n, uint32_t crc) {
  static const Tables t = make_tables();
  crc = ~crc;
  while (n >= 8) {
    // Little-endian load of the first four bytes folded into the running CRC.
    const uint32_t lo = crc ^ (uint32_t{p[0]} | uint32_t{p[1]} << 8 | uint32_t{p[2]} << 16 | uint32_t{p[3]} << 24);
    crc = t[7][lo & 0xFF] ^ t[6][(lo >> 8) & 0xFF] ^ t[5][(lo >> 16) & 0xFF] ^ t[4][lo >> 24] ^ t[3][p[4]] ^
          t[2][p[5]] ^ t[1][p[6]] ^ t[0][p[7]];
    p += 8;
    n -= 8;
  }
  while (n-- > 0) crc = t[0][(crc ^ *p++) & 0xFF] ^ (crc >> 8);
  return ~crc;
}

#ifdef FACETRAIN_CRC32C_X86
// One dependent chain of 8-byte CRC32 instructions (~8 bytes per 3 cycles). Interleaving three chains would
// be faster but needs a CRC-combine step; checkpoints are hashed once per write, so this is plenty.
__attribute__((target("sse4.2"))) uint32_t crc32c_sse42(const uint8_t* p, size_t n, uint32_t crc) {
  crc = ~crc;
  while (n > 0 && (reinterpret_cast<uintptr_t>(p) & 7) != 0) {
    crc = _mm_crc32_u8(crc, *p++);
    --n;
  }
#if defined(__x86_64__)
  uint64_t crc64 = crc;
  while (n >= 8) {
    uint64_t word;
    std::memcpy(&word, p, 8);
    crc64 = _mm_crc32_u64(crc64, word);
    p += 8;
    n -= 8;
  }
  crc = static_cast<uint32_t>(crc64);
#endif
  while (n >= 4) {
    uint32_t word;
    std::memcpy(&word, p, 4);
    crc = _mm_crc32_u32(crc, word);
    p += 4;
    n -= 4;
  }
  while (n > 0) {
    crc = _mm_crc32_u8(crc, *p++);
    --n;
  }
  return ~crc;
}

bool cpu_has_sse42() {
  static const bool has = [] {
    __builtin_cpu_init();  // needed if the first call happens during static initialisation
    return __builtin_cpu_supports("sse4.2") != 0;
  }();
  return has;
}
#endif

}  // namespace

uint32_t crc32c(const void* data, size_t n, uint32_t crc) {
  const auto* p = static_cast<const uint8_t*>(data);
#ifdef FACETRAIN_CRC32C_X86
  if (cpu_has_sse42()) return crc32c_sse42(p, n, crc);
#endif
  return crc32c_table(p, n, crc);
}

uint32_t crc32c_portable(const void* data, size_t n, uint32_t crc) {
  return crc32c_table(static_cast<const uint8_t*>(data), n, crc);
}

bool crc32c_uses_hardware() {
#ifdef FACETRAIN_CRC32C_X86
  return cpu_has_sse42();
#else
  return false;
#endif
}

}  // namespace facetrain
