// Keras ImageDataGenerator augmentation (rotation, shift, shear, zoom, flips, fill modes) plus random
// grayscale: the whole transform is one inverse affine map (flips folded in), sampled bilinearly (Keras'
// order=1) and normalized to float CHW in the same pass. Draws come from datastore/random.h.
//
// Why not cv::warpAffine (what this first used): on 64x64x3 images it took 30-45 us per image here
// (its per-pixel border path is scalar, and its output still needs a second pass to float CHW), over the
// whole 40 us budget of the 25,000 images/s target. The AVX2 kernel below gathers 8 pixels' taps at a
// time and writes normalized floats directly; cv::warpAffine stays the independent check in the tests.
#include "datastore/augment.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <vector>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define FACETRAIN_HAVE_AVX2_KERNEL 1
#endif

#include "core/error.h"
#include "datastore/random.h"

namespace facetrain {

FillMode parse_fill_mode(const std::string& name, const std::string& what) {
  if (name == "nearest") return FillMode::kNearest;
  if (name == "constant") return FillMode::kConstant;
  if (name == "reflect") return FillMode::kReflect;
  if (name == "wrap") return FillMode::kWrap;
  throw UserError(what + ": unknown fill_mode '" + name + "' (expected nearest, constant, reflect or wrap)");
}

bool AugmentOptions::enabled() const {
  return rotation_range != 0 || width_shift_range != 0 || height_shift_range != 0 || shear_range != 0 ||
         zoom_range != 0 || horizontal_flip || vertical_flip || random_grayscale > 0;
}

void AugmentOptions::validate(const std::string& what) const {
  auto check = [&](bool ok, const char* field, float value, const char* range) {
    FT_USER_CHECK(ok, what << "." << field << " = " << value << " must be in " << range);
  };
  check(rotation_range >= 0 && rotation_range <= 360, "rotation_range", rotation_range, "[0, 360]");
  check(width_shift_range >= 0 && width_shift_range < 1, "width_shift_range", width_shift_range, "[0, 1)");
  check(height_shift_range >= 0 && height_shift_range < 1, "height_shift_range", height_shift_range, "[0, 1)");
  check(shear_range >= 0 && shear_range < 90, "shear_range", shear_range, "[0, 90) degrees");
  check(zoom_range >= 0 && zoom_range < 1, "zoom_range", zoom_range, "[0, 1)");
  check(cval >= 0 && cval <= 255, "cval", cval, "[0, 255]");
  check(random_grayscale >= 0 && random_grayscale <= 1, "random_grayscale", random_grayscale, "[0, 1]");
}

bool AugmentParams::is_affine() const { return theta != 0 || tx != 0 || ty != 0 || shear != 0 || zx != 1 || zy != 1; }

AugmentParams draw_augment_params(const AugmentOptions& o, int height, int width, uint64_t seed, int64_t epoch,
                                  int64_t index) {
  SplitMix64 rng(mix_seed(seed, static_cast<uint64_t>(epoch), static_cast<uint64_t>(index), RandomDomain::kAugment));
  AugmentParams p;
  // Keras' order: theta, tx (height shift), ty (width shift), shear, zx, zy, flips; then grayscale.
  p.theta = rng.uniform(-o.rotation_range, o.rotation_range);
  p.tx = rng.uniform(-o.height_shift_range, o.height_shift_range) * height;
  p.ty = rng.uniform(-o.width_shift_range, o.width_shift_range) * width;
  p.shear = rng.uniform(-o.shear_range, o.shear_range);
  p.zx = rng.uniform(1.0 - o.zoom_range, 1.0 + o.zoom_range);
  p.zy = rng.uniform(1.0 - o.zoom_range, 1.0 + o.zoom_range);
  p.flip_horizontal = (rng.uniform() < 0.5) && o.horizontal_flip;
  p.flip_vertical = (rng.uniform() < 0.5) && o.vertical_flip;
  p.grayscale = rng.uniform() < o.random_grayscale;
  return p;
}

namespace {

// 3x3 row-major products in (row, col, 1) homogeneous coordinates.
void matmul3(const double a[9], const double b[9], double out[9]) {
  double r[9];
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 3; ++j) r[i * 3 + j] = a[i * 3] * b[j] + a[i * 3 + 1] * b[3 + j] + a[i * 3 + 2] * b[6 + j];
  std::memcpy(out, r, sizeof r);
}

constexpr float kLumaR = 0.299f, kLumaG = 0.587f, kLumaB = 0.114f;

// Source index of coordinate i on an axis of n pixels (OpenCV's borderInterpolate rules); -1 = cval.
inline int border_index(int64_t i, int n, FillMode mode) {
  if (i >= 0 && i < n) return static_cast<int>(i);
  switch (mode) {
    case FillMode::kNearest: return i < 0 ? 0 : n - 1;  // aaaa|abcd|dddd
    case FillMode::kConstant: return -1;                // kkkk|abcd|kkkk
    case FillMode::kWrap: {                             // abcd|abcd|abcd
      const int64_t r = i % n;
      return static_cast<int>(r < 0 ? r + n : r);
    }
    case FillMode::kReflect: {  // dcba|abcd|dcba (scipy 'reflect')
      const int64_t period = 2 * static_cast<int64_t>(n);
      int64_t r = i % period;
      if (r < 0) r += period;
      return static_cast<int>(r < n ? r : period - 1 - r);
    }
  }
  return -1;
}

// border_index over [-margin, n - 1 + margin], cached per thread (two axes).
struct AxisTable {
  int n = -1, margin = 0;
  FillMode mode = FillMode::kNearest;
  std::vector<int32_t> index;
  const int32_t* zero() const { return index.data() + margin; }  // index of coordinate 0
  void build(int size, FillMode fill) {
    if (size == n && fill == mode) return;
    n = size;
    mode = fill;
    margin = 2 * size + 16;
    index.resize(static_cast<size_t>(size + 2 * margin));
    for (int i = -margin; i < size + margin; ++i) index[i + margin] = border_index(i, size, fill);
  }
};

struct Plan {
  const uint8_t* src;
  int h, w, c;
  float m[6];
  FillMode mode;
  float cval;
  bool gray;
  const float* scale;
  const float* shift;
  float* dst;     // float planes (augment_normalize), or
  uint8_t* dst8;  // byte planes (augment_to_uint8): values rounded half up
  const AxisTable* xt;
  const AxisTable* yt;
  bool tables_cover;  // every sample (and its +1 neighbour) lies inside the tables' range
};

// One pixel's taps and weights in scalar code; the reference for the vector kernel.
inline void scalar_pixel(const Plan& p, int x, int y) {
  const float X = p.m[0] * static_cast<float>(x) + (p.m[1] * static_cast<float>(y) + p.m[2]);
  const float Y = p.m[3] * static_cast<float>(x) + (p.m[4] * static_cast<float>(y) + p.m[5]);
  // Far outside (only extreme shears/zooms): clamp so the integer conversion stays defined.
  const float fx = std::floor(std::clamp(X, -1e8f, 1e8f)), fy = std::floor(std::clamp(Y, -1e8f, 1e8f));
  const float ax = X - fx, ay = Y - fy;
  const auto ix = static_cast<int64_t>(fx), iy = static_cast<int64_t>(fy);
  auto col = [&](int64_t i) { return p.tables_cover ? p.xt->zero()[i] : border_index(i, p.w, p.mode); };
  auto row = [&](int64_t i) { return p.tables_cover ? p.yt->zero()[i] : border_index(i, p.h, p.mode); };
  const int x0 = col(ix), x1 = col(ix + 1), y0 = row(iy), y1 = row(iy + 1);
  const float w00 = (1 - ax) * (1 - ay), w01 = ax * (1 - ay), w10 = (1 - ax) * ay, w11 = ax * ay;
  float v[4] = {0, 0, 0, 0};
  const int64_t stride = static_cast<int64_t>(p.w) * p.c;
  for (int k = 0; k < p.c && k < 4; ++k) {
    auto tap = [&](int yy, int xx) -> float {
      return (yy < 0 || xx < 0) ? p.cval : static_cast<float>(p.src[yy * stride + static_cast<int64_t>(xx) * p.c + k]);
    };
    v[k] = tap(y0, x0) * w00 + tap(y0, x1) * w01 + tap(y1, x0) * w10 + tap(y1, x1) * w11;
  }
  if (p.gray && p.c == 3) v[0] = v[1] = v[2] = kLumaR * v[0] + kLumaG * v[1] + kLumaB * v[2];
  const int64_t hw = static_cast<int64_t>(p.h) * p.w, at = static_cast<int64_t>(y) * p.w + x;
  if (p.dst8 != nullptr) {
    // Bilinear values are convex combinations of 0..255 values: round half up, clamp float noise.
    for (int k = 0; k < p.c && k < 4; ++k)
      p.dst8[k * hw + at] = static_cast<uint8_t>(std::clamp(v[k] + 0.5f, 0.0f, 255.0f));
    return;
  }
  for (int k = 0; k < p.c && k < 4; ++k) p.dst[k * hw + at] = v[k] * p.scale[k] + p.shift[k];
}

void scalar_kernel(const Plan& p) {
  for (int y = 0; y < p.h; ++y)
    for (int x = 0; x < p.w; ++x) scalar_pixel(p, x, y);
}

#ifdef FACETRAIN_HAVE_AVX2_KERNEL
// Channel k of 8 loaded taps (byte k of each 32-bit lane) as floats.
__attribute__((target("avx2,fma"))) inline __m256 tap_channel(__m256i taps, int k) {
  return _mm256_cvtepi32_ps(_mm256_and_si256(_mm256_srli_epi32(taps, 8 * k), _mm256_set1_epi32(0xFF)));
}

// Eight 32-bit loads at byte offsets `off` from `base`. Which is faster depends on the CPU: scalar loads
// on the AMD Zen 3 this was tuned on (18.3-20.4 vs 19.8-25 us per 64x64x3 image, interleaved runs);
// vpgatherdd on an Intel Xeon with AVX-512 (Sapphire Rapids class): 224x224x3 augmented 3,712 -> 4,899
// images per CPU-second (`bench loader`). The bytes are the same either way.
template <bool kGather>
__attribute__((target("avx2,fma"))) inline __m256i load8(const uint8_t* base, __m256i off) {
  if constexpr (kGather) return _mm256_i32gather_epi32(reinterpret_cast<const int*>(base), off, 1);
  alignas(32) int32_t o[8];
  _mm256_store_si256(reinterpret_cast<__m256i*>(o), off);
  int32_t v[8];
  for (int i = 0; i < 8; ++i) std::memcpy(&v[i], base + o[i], 4);
  return _mm256_setr_epi32(v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7]);
}

// 8 pixels of C channel values (each in 0..255 up to float error: bilinear weights are a convex combination)
// rounded half up and stored as 8 bytes in each of the C byte planes (the first `active` of them). The packs
// saturate, so no clamp is needed; three channels share the packs.
template <int C>
__attribute__((target("avx2,fma"))) inline void store8_bytes(const __m256* v, uint8_t* out, int64_t plane, int active) {
  const __m256 half = _mm256_set1_ps(0.5f);
  __m256i bytes;  // 64-bit lane k: the 8 bytes of channel k
  if constexpr (C == 3) {
    const __m256i i0 = _mm256_cvttps_epi32(_mm256_add_ps(v[0], half));
    const __m256i i1 = _mm256_cvttps_epi32(_mm256_add_ps(v[1], half));
    const __m256i i2 = _mm256_cvttps_epi32(_mm256_add_ps(v[2], half));
    // Per 128-bit half h (pixels 4h..4h+3): dwords [c0, c1, c2, c2] of 4 bytes each.
    const __m256i b = _mm256_packus_epi16(_mm256_packus_epi32(i0, i1), _mm256_packus_epi32(i2, i2));
    bytes = _mm256_permutevar8x32_epi32(b, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
  } else {
    const __m256i i0 = _mm256_cvttps_epi32(_mm256_add_ps(v[0], half));
    const __m256i b = _mm256_packus_epi16(_mm256_packus_epi32(i0, i0), _mm256_packus_epi32(i0, i0));
    bytes = _mm256_permutevar8x32_epi32(b, _mm256_setr_epi32(0, 4, 0, 0, 0, 0, 0, 0));
  }
  alignas(32) uint8_t lanes[32];
  _mm256_store_si256(reinterpret_cast<__m256i*>(lanes), bytes);
  if (active == 8) {
    for (int k = 0; k < C; ++k) std::memcpy(out + k * plane, lanes + 8 * k, 8);
  } else {
    for (int k = 0; k < C; ++k) std::memcpy(out + k * plane, lanes + 8 * k, static_cast<size_t>(active));
  }
}

// 8 output pixels per step: coordinates and weights in float lanes, the 4 taps of each pixel fetched
// as 32-bit loads (one load brings all channels of a tap), fill modes through the axis tables.
// kBytes: byte planes out (augment_to_uint8) instead of normalized float planes.
template <int C, bool kGather, bool kBytes>
__attribute__((target("avx2,fma"))) void avx2_kernel(const Plan& p) {
  const int h = p.h, w = p.w;
  const int stride = w * C;
  const int64_t hw = static_cast<int64_t>(h) * w;
  const __m256 lane = _mm256_setr_ps(0, 1, 2, 3, 4, 5, 6, 7);
  const __m256 m0 = _mm256_set1_ps(p.m[0]), m3 = _mm256_set1_ps(p.m[3]), one = _mm256_set1_ps(1.0f);
  const __m256i minus1 = _mm256_set1_epi32(-1), zero = _mm256_setzero_si256();
  const __m256i wm1 = _mm256_set1_epi32(w - 1), hm1 = _mm256_set1_epi32(h - 1);
  const __m256i vstride = _mm256_set1_epi32(stride), vc = _mm256_set1_epi32(C);
  // A 32-bit load at offset o reads bytes o..o+3: keep o + 3 inside the image.
  const __m256i last_safe = _mm256_set1_epi32(static_cast<int>(hw * C) - 4);
  const __m256i cval_taps = _mm256_set1_epi32(static_cast<int>(p.cval) * 0x01010101);
  const bool constant = p.mode == FillMode::kConstant;
  const __m256i xlo = _mm256_set1_epi32(-p.xt->margin), xhi = _mm256_set1_epi32(w - 1 + p.xt->margin);
  const __m256i ylo = _mm256_set1_epi32(-p.yt->margin), yhi = _mm256_set1_epi32(h - 1 + p.yt->margin);
  const int* xtab = p.xt->zero();
  const int* ytab = p.yt->zero();
  __m256 scale[C], shift[C];
  for (int k = 0; k < C; ++k) {
    scale[k] = _mm256_set1_ps(p.scale[k]);
    shift[k] = _mm256_set1_ps(p.shift[k]);
  }
  const __m256 luma_r = _mm256_set1_ps(kLumaR), luma_g = _mm256_set1_ps(kLumaG), luma_b = _mm256_set1_ps(kLumaB);

  for (int y = 0; y < h; ++y) {
    const __m256 row_x = _mm256_set1_ps(p.m[1] * static_cast<float>(y) + p.m[2]);
    const __m256 row_y = _mm256_set1_ps(p.m[4] * static_cast<float>(y) + p.m[5]);
    for (int x0 = 0; x0 < w; x0 += 8) {
      const int active = std::min(8, w - x0);
      const __m256 xs = _mm256_add_ps(_mm256_set1_ps(static_cast<float>(x0)), lane);
      // Same operation order as scalar_pixel: m0*x + (m1*y + m2), rounded once by the FMA.
      const __m256 X = _mm256_fmadd_ps(m0, xs, row_x), Y = _mm256_fmadd_ps(m3, xs, row_y);
      const __m256 fX = _mm256_floor_ps(X), fY = _mm256_floor_ps(Y);
      const __m256 ax = _mm256_sub_ps(X, fX), ay = _mm256_sub_ps(Y, fY);
      const __m256i ix = _mm256_cvttps_epi32(fX), iy = _mm256_cvttps_epi32(fY);
      const __m256i inside =
          _mm256_and_si256(_mm256_and_si256(_mm256_cmpgt_epi32(ix, minus1), _mm256_cmpgt_epi32(wm1, ix)),
                           _mm256_and_si256(_mm256_cmpgt_epi32(iy, minus1), _mm256_cmpgt_epi32(hm1, iy)));
      __m256i o00, o01, o10, o11, omax;
      __m256i v00 = minus1, v01 = minus1, v10 = minus1, v11 = minus1;  // tap lies in the image
      bool masked = false;
      if (_mm256_movemask_ps(_mm256_castsi256_ps(inside)) == 0xFF) {
        o00 = _mm256_add_epi32(_mm256_mullo_epi32(iy, vstride), _mm256_mullo_epi32(ix, vc));
        o01 = _mm256_add_epi32(o00, vc);
        o10 = _mm256_add_epi32(o00, vstride);
        o11 = _mm256_add_epi32(o10, vc);
        omax = o11;
      } else {
        const __m256i cx0 = _mm256_min_epi32(_mm256_max_epi32(ix, xlo), xhi);
        const __m256i cx1 = _mm256_min_epi32(_mm256_max_epi32(_mm256_sub_epi32(ix, minus1), xlo), xhi);
        const __m256i cy0 = _mm256_min_epi32(_mm256_max_epi32(iy, ylo), yhi);
        const __m256i cy1 = _mm256_min_epi32(_mm256_max_epi32(_mm256_sub_epi32(iy, minus1), ylo), yhi);
        __m256i tx0 = _mm256_i32gather_epi32(xtab, cx0, 4), tx1 = _mm256_i32gather_epi32(xtab, cx1, 4);
        __m256i ty0 = _mm256_i32gather_epi32(ytab, cy0, 4), ty1 = _mm256_i32gather_epi32(ytab, cy1, 4);
        if (constant) {
          masked = true;
          const __m256i okx0 = _mm256_cmpgt_epi32(tx0, minus1), okx1 = _mm256_cmpgt_epi32(tx1, minus1);
          const __m256i oky0 = _mm256_cmpgt_epi32(ty0, minus1), oky1 = _mm256_cmpgt_epi32(ty1, minus1);
          v00 = _mm256_and_si256(oky0, okx0);
          v01 = _mm256_and_si256(oky0, okx1);
          v10 = _mm256_and_si256(oky1, okx0);
          v11 = _mm256_and_si256(oky1, okx1);
          tx0 = _mm256_max_epi32(tx0, zero);
          tx1 = _mm256_max_epi32(tx1, zero);
          ty0 = _mm256_max_epi32(ty0, zero);
          ty1 = _mm256_max_epi32(ty1, zero);
        }
        const __m256i r0 = _mm256_mullo_epi32(ty0, vstride), r1 = _mm256_mullo_epi32(ty1, vstride);
        const __m256i c0 = _mm256_mullo_epi32(tx0, vc), c1 = _mm256_mullo_epi32(tx1, vc);
        o00 = _mm256_add_epi32(r0, c0);
        o01 = _mm256_add_epi32(r0, c1);
        o10 = _mm256_add_epi32(r1, c0);
        o11 = _mm256_add_epi32(r1, c1);
        omax = _mm256_max_epi32(_mm256_max_epi32(o00, o01), _mm256_max_epi32(o10, o11));
      }
      if (!p.tables_cover || _mm256_movemask_ps(_mm256_castsi256_ps(_mm256_cmpgt_epi32(omax, last_safe))) != 0) {
        // A tap on the image's last pixel (a 4-byte read would pass its end), or beyond the tables.
        for (int x = x0; x < x0 + active; ++x) scalar_pixel(p, x, y);
        continue;
      }
      __m256i g00 = load8<kGather>(p.src, o00), g01 = load8<kGather>(p.src, o01);
      __m256i g10 = load8<kGather>(p.src, o10), g11 = load8<kGather>(p.src, o11);
      if (masked) {  // constant fill: taps outside the image take cval (their offsets were clamped to 0)
        g00 = _mm256_blendv_epi8(cval_taps, g00, v00);
        g01 = _mm256_blendv_epi8(cval_taps, g01, v01);
        g10 = _mm256_blendv_epi8(cval_taps, g10, v10);
        g11 = _mm256_blendv_epi8(cval_taps, g11, v11);
      }
      const __m256 bx = _mm256_sub_ps(one, ax), by = _mm256_sub_ps(one, ay);
      const __m256 w00 = _mm256_mul_ps(bx, by), w01 = _mm256_mul_ps(ax, by);
      const __m256 w10 = _mm256_mul_ps(bx, ay), w11 = _mm256_mul_ps(ax, ay);
      __m256 v[C];
      for (int k = 0; k < C; ++k) {
        // t00*w00 + t01*w01 + t10*w10 + t11*w11, left to right as in scalar_pixel (FMA rounds less).
        v[k] = _mm256_fmadd_ps(
            tap_channel(g11, k), w11,
            _mm256_fmadd_ps(tap_channel(g10, k), w10,
                            _mm256_fmadd_ps(tap_channel(g01, k), w01, _mm256_mul_ps(tap_channel(g00, k), w00))));
      }
      if constexpr (C == 3) {
        if (p.gray) {
          const __m256 g = _mm256_fmadd_ps(luma_b, v[2], _mm256_fmadd_ps(luma_g, v[1], _mm256_mul_ps(luma_r, v[0])));
          v[0] = v[1] = v[2] = g;
        }
      }
      if constexpr (kBytes) {
        store8_bytes<C>(v, p.dst8 + static_cast<int64_t>(y) * w + x0, hw, active);
        continue;
      }
      float* out = p.dst + static_cast<int64_t>(y) * w + x0;
      if (active == 8) {
        for (int k = 0; k < C; ++k) _mm256_storeu_ps(out + k * hw, _mm256_fmadd_ps(v[k], scale[k], shift[k]));
      } else {
        const __m256i store_mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(active), _mm256_cvttps_epi32(lane));
        for (int k = 0; k < C; ++k)
          _mm256_maskstore_ps(out + k * hw, store_mask, _mm256_fmadd_ps(v[k], scale[k], shift[k]));
      }
    }
  }
}

std::atomic<bool> simd_allowed{true};

bool cpu_has_avx2() {
  static const bool has = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  }();
  return has;
}

// Gathered tap loads on Intel CPUs, scalar ones elsewhere (load8).
bool gather_taps() {
  static const bool intel = [] {
    __builtin_cpu_init();
    return __builtin_cpu_is("intel") != 0;
  }();
  return intel;
}

template <int C, bool kBytes>
void run_avx2_kernel(const Plan& p) {
  if (gather_taps()) {
    avx2_kernel<C, true, kBytes>(p);
  } else {
    avx2_kernel<C, false, kBytes>(p);
  }
}

template <int C>
void run_avx2_kernel(const Plan& p) {
  if (p.dst8 != nullptr) {
    run_avx2_kernel<C, true>(p);
  } else {
    run_avx2_kernel<C, false>(p);
  }
}
#endif

}  // namespace

void augment_inverse_map(const AugmentParams& p, int height, int width, double matrix[6]) {
  constexpr double kDeg = M_PI / 180.0;
  const double c = std::cos(p.theta * kDeg), s = std::sin(p.theta * kDeg);
  const double rotation[9] = {c, -s, 0, s, c, 0, 0, 0, 1};
  const double shift[9] = {1, 0, p.tx, 0, 1, p.ty, 0, 0, 1};
  const double sh = p.shear * kDeg;
  const double shear[9] = {1, -std::sin(sh), 0, 0, std::cos(sh), 0, 0, 0, 1};
  const double zoom[9] = {p.zx, 0, 0, 0, p.zy, 0, 0, 0, 1};
  // Keras' transform_matrix_offset_center: about (h/2 - 0.5, w/2 - 0.5).
  const double orow = height / 2.0 - 0.5, ocol = width / 2.0 - 0.5;
  const double offset[9] = {1, 0, orow, 0, 1, ocol, 0, 0, 1};
  const double reset[9] = {1, 0, -orow, 0, 1, -ocol, 0, 0, 1};
  double m[9];
  matmul3(rotation, shift, m);
  matmul3(m, shear, m);
  matmul3(m, zoom, m);
  matmul3(offset, m, m);
  matmul3(m, reset, m);
  // (row, col) -> (x = col, y = row): swap both the input and the output coordinates.
  matrix[0] = m[4];
  matrix[1] = m[3];
  matrix[2] = m[5];
  matrix[3] = m[1];
  matrix[4] = m[0];
  matrix[5] = m[2];
  // Keras flips the transformed image; flipping the output is the change of output coordinates
  // x -> W-1-x (y -> H-1-y), folded in here so that one pass does both.
  if (p.flip_horizontal) {
    matrix[2] += matrix[0] * (width - 1);
    matrix[5] += matrix[3] * (width - 1);
    matrix[0] = -matrix[0];
    matrix[3] = -matrix[3];
  }
  if (p.flip_vertical) {
    matrix[2] += matrix[1] * (height - 1);
    matrix[5] += matrix[4] * (height - 1);
    matrix[1] = -matrix[1];
    matrix[4] = -matrix[4];
  }
}

void set_augment_simd(bool enabled) {
#ifdef FACETRAIN_HAVE_AVX2_KERNEL
  simd_allowed = enabled;
#else
  (void)enabled;
#endif
}

bool augment_simd_active() {
#ifdef FACETRAIN_HAVE_AVX2_KERNEL
  return simd_allowed && cpu_has_avx2();
#else
  return false;
#endif
}

std::string augment_kernel_name() {
#ifdef FACETRAIN_HAVE_AVX2_KERNEL
  if (augment_simd_active()) return gather_taps() ? "AVX2, gathered taps" : "AVX2, scalar tap loads";
#endif
  return "scalar";
}

namespace {

// Builds the plan for one image and runs the vector kernel where it applies, else the scalar one.
// Exactly one of dst (float planes, x * scale + shift) and dst8 (byte planes) is set.
void run_augment(const uint8_t* pixels, int height, int width, int channels, const AugmentParams& params,
                 FillMode fill_mode, float cval, const float* scale, const float* shift, float* dst, uint8_t* dst8) {
  FT_CHECK(height > 0 && width > 0 && channels >= 1 && channels <= 4, "bad image shape");
  thread_local AxisTable x_table, y_table;
  x_table.build(width, fill_mode);
  y_table.build(height, fill_mode);
  double m[6];
  augment_inverse_map(params, height, width, m);
  Plan p{};
  p.src = pixels;
  p.h = height;
  p.w = width;
  p.c = channels;
  for (int i = 0; i < 6; ++i) p.m[i] = static_cast<float>(m[i]);
  p.mode = fill_mode;
  p.cval = std::round(std::clamp(cval, 0.0f, 255.0f));  // a byte value, as the vector path fills it
  p.gray = params.grayscale;
  p.scale = scale;
  p.shift = shift;
  p.dst = dst;
  p.dst8 = dst8;
  p.xt = &x_table;
  p.yt = &y_table;
  // An affine map's extremes over the output rectangle are at its corners (x up to the last vector lane).
  const double xmax = ((width + 7) / 8) * 8 - 1, ymax = height - 1;
  bool cover = true;
  for (double cx : {0.0, xmax})
    for (double cy : {0.0, ymax}) {
      const double sx = m[0] * cx + m[1] * cy + m[2], sy = m[3] * cx + m[4] * cy + m[5];
      cover = cover && sx >= -x_table.margin + 2 && sx <= width - 3 + x_table.margin && sy >= -y_table.margin + 2 &&
              sy <= height - 3 + y_table.margin;
    }
  p.tables_cover = cover;
#ifdef FACETRAIN_HAVE_AVX2_KERNEL
  if (cover && augment_simd_active() && (channels == 1 || channels == 3)) {
    if (channels == 3) {
      run_avx2_kernel<3>(p);
    } else {
      run_avx2_kernel<1>(p);
    }
    return;
  }
#endif
  scalar_kernel(p);
}

}  // namespace

void augment_normalize(const uint8_t* pixels, int height, int width, int channels, const AugmentParams& params,
                       FillMode fill_mode, float cval, const float* scale, const float* shift, float* dst) {
  run_augment(pixels, height, width, channels, params, fill_mode, cval, scale, shift, dst, nullptr);
}

void augment_to_uint8(const uint8_t* pixels, int height, int width, int channels, const AugmentParams& params,
                      FillMode fill_mode, float cval, uint8_t* dst) {
  run_augment(pixels, height, width, channels, params, fill_mode, cval, nullptr, nullptr, nullptr, dst);
}

void apply_augment(uint8_t* pixels, int height, int width, int channels, const AugmentParams& params,
                   FillMode fill_mode, float cval) {
  const size_t hw = static_cast<size_t>(height) * width;
  thread_local std::vector<uint8_t> planes;
  planes.resize(hw * channels);
  augment_to_uint8(pixels, height, width, channels, params, fill_mode, cval, planes.data());
  for (size_t i = 0; i < hw; ++i)
    for (int k = 0; k < channels; ++k) pixels[i * channels + k] = planes[k * hw + i];
}

void augment_image(uint8_t* pixels, int height, int width, int channels, const AugmentOptions& options, uint64_t seed,
                   int64_t epoch, int64_t index) {
  if (!options.enabled()) return;
  const AugmentParams p = draw_augment_params(options, height, width, seed, epoch, index);
  apply_augment(pixels, height, width, channels, p, options.fill_mode, options.cval);
}

}  // namespace facetrain
