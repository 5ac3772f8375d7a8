// Counter-style random numbers for the data path: every draw is a pure function of (seed, a, b, domain),
// so an image's augmentation and an epoch's order never depend on ranks, threads or call order.
// SplitMix64 (Steele, Lea & Flood 2014) is tiny to seed (one word, unlike mt19937_64's 312) and passes
// BigCrush; uniforms are built here from 53 bits, not by std:: distributions whose output differs by library.
#pragma once

#include <cstdint>

namespace facetrain {

class SplitMix64 {
 public:
  explicit SplitMix64(uint64_t state) : state_(state) {}
  uint64_t next() {
    uint64_t z = (state_ += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
  }
  // Uniform in [0, 1) with 53 random bits.
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }
  // Uniform in [lo, hi); exactly lo when lo == hi.
  double uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }
  // Unbiased integer in [0, n), n > 0 (rejection of the short last interval).
  uint64_t below(uint64_t n) {
    const uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t x;
    do {
      x = next();
    } while (x >= limit);
    return x % n;
  }

 private:
  uint64_t state_;
};

// Domains keep the streams of different uses independent for the same (seed, a, b).
enum class RandomDomain : uint64_t { kAugment = 1, kEpochOrder = 2, kChunkOrder = 3 };

// A well-mixed generator state from (seed, a, b, domain): each word passes through a SplitMix64 step.
inline uint64_t mix_seed(uint64_t seed, uint64_t a, uint64_t b, RandomDomain domain) {
  SplitMix64 g(seed ^ (static_cast<uint64_t>(domain) * 0xD1B54A32D192ED03ULL));
  uint64_t h = g.next();
  SplitMix64 ga(h ^ a);
  h = ga.next();
  SplitMix64 gb(h ^ (b * 0x9E3779B97F4A7C15ULL));
  return gb.next();
}

}  // namespace facetrain
