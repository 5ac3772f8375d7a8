// Tests of the Keras-style augmentation against independent computations: exact flips, 90-degree
// rotations equal to cv::rotate, integer shifts equal to direct index shifts under every fill mode,
// zoom/shear/rotation against a double-precision bilinear reference, luma grayscale, and the draws'
// determinism and ranges.
#include <gtest/gtest.h>

#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <tuple>
#include <vector>

#include "core/error.h"
#include "datastore/augment.h"

namespace facetrain {
namespace {

using Image = std::vector<uint8_t>;

Image random_image(int h, int w, int c, uint64_t seed) {
  std::mt19937_64 rng(seed);
  Image img(static_cast<size_t>(h) * w * c);
  for (auto& v : img) v = static_cast<uint8_t>(rng() >> 56);
  return img;
}

// Smooth content (gradients of a few levels per pixel) so bilinear quantization differences stay below 1.
Image smooth_image(int h, int w, int c) {
  Image img(static_cast<size_t>(h) * w * c);
  for (int r = 0; r < h; ++r)
    for (int x = 0; x < w; ++x)
      for (int k = 0; k < c; ++k)
        img[(static_cast<size_t>(r) * w + x) * c + k] =
            static_cast<uint8_t>(127.5 + 100 * std::sin(0.11 * r + 0.07 * x + k) * std::cos(0.05 * x - 0.09 * r));
  return img;
}

Image apply(const Image& in, int h, int w, int c, const AugmentParams& p, FillMode mode = FillMode::kNearest,
            float cval = 0) {
  Image out = in;
  apply_augment(out.data(), h, w, c, p, mode, cval);
  return out;
}

// Runs each test body with the AVX2 kernel (when the CPU has it) and with the portable scalar kernel.
class AugmentKernels : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override { set_augment_simd(GetParam()); }
  void TearDown() override { set_augment_simd(true); }
};
INSTANTIATE_TEST_SUITE_P(Kernels, AugmentKernels, ::testing::Values(true, false),
                         [](const ::testing::TestParamInfo<bool>& info) { return info.param ? "simd" : "scalar"; });

uint8_t at(const Image& img, int w, int c, int r, int x, int k) {
  return img[(static_cast<size_t>(r) * w + x) * c + k];
}

// Border rules written out independently of OpenCV (Keras/scipy names).
int border(int i, int n, FillMode mode) {
  if (i >= 0 && i < n) return i;
  switch (mode) {
    case FillMode::kNearest: return std::clamp(i, 0, n - 1);
    case FillMode::kConstant: return -1;
    case FillMode::kWrap: return ((i % n) + n) % n;
    case FillMode::kReflect: {
      // ... c b a | a b c ... : reflect about the edge, period 2n.
      int r = ((i % (2 * n)) + 2 * n) % (2 * n);
      return r < n ? r : 2 * n - 1 - r;
    }
  }
  return -1;
}

TEST_P(AugmentKernels, FlipsAreExactMirrors) {
  const int h = 13, w = 17;
  for (int c : {1, 3})
    for (int mode = 1; mode <= 3; ++mode) {
      const Image in = random_image(h, w, c, 1);
      AugmentParams p;
      p.flip_horizontal = mode & 1;
      p.flip_vertical = mode & 2;
      const Image out = apply(in, h, w, c, p);
      for (int r = 0; r < h; ++r)
        for (int x = 0; x < w; ++x)
          for (int k = 0; k < c; ++k) {
            const int sr = p.flip_vertical ? h - 1 - r : r, sx = p.flip_horizontal ? w - 1 - x : x;
            ASSERT_EQ(at(out, w, c, r, x, k), at(in, w, c, sr, sx, k)) << "mode " << mode << " at " << r << "," << x;
          }
    }
}

TEST_P(AugmentKernels, RightAngleRotationsEqualCvRotate) {
  for (int c : {1, 3}) {
    const int n = 32;
    const Image in = random_image(n, n, c, 2);
    const cv::Mat src(n, n, CV_8UC(c), const_cast<uint8_t*>(in.data()));
    // Keras' rotation matrix acts on (row, col): a positive angle turns the picture clockwise on screen.
    const std::pair<double, int> cases[] = {
        {90, cv::ROTATE_90_CLOCKWISE}, {-90, cv::ROTATE_90_COUNTERCLOCKWISE}, {180, cv::ROTATE_180}};
    for (const auto& [theta, code] : cases) {
      AugmentParams p;
      p.theta = theta;
      for (FillMode mode : {FillMode::kNearest, FillMode::kConstant, FillMode::kReflect, FillMode::kWrap}) {
        const Image out = apply(in, n, n, c, p, mode, 77);
        cv::Mat expected;
        cv::rotate(src, expected, code);
        ASSERT_TRUE(expected.isContinuous());
        EXPECT_EQ(0, std::memcmp(out.data(), expected.data, out.size()))
            << "theta " << theta << " channels " << c << " fill " << static_cast<int>(mode);
      }
    }
  }
}

TEST_P(AugmentKernels, IntegerShiftsEqualIndexShiftsUnderEveryFillMode) {
  const int h = 20, w = 24, c = 3;
  const Image in = random_image(h, w, c, 3);
  const float cval = 200;
  for (FillMode mode : {FillMode::kNearest, FillMode::kConstant, FillMode::kReflect, FillMode::kWrap}) {
    for (const auto& [tx, ty] : {std::pair<int, int>{3, -5}, {-7, 2}, {0, 11}, {-19, 23}}) {
      AugmentParams p;
      p.tx = tx;  // Keras: input row = output row + tx
      p.ty = ty;
      const Image out = apply(in, h, w, c, p, mode, cval);
      for (int r = 0; r < h; ++r)
        for (int x = 0; x < w; ++x) {
          const int sr = border(r + tx, h, mode), sx = border(x + ty, w, mode);
          for (int k = 0; k < c; ++k) {
            const int expected = (sr < 0 || sx < 0) ? static_cast<int>(cval) : at(in, w, c, sr, sx, k);
            ASSERT_EQ(at(out, w, c, r, x, k), expected)
                << "fill " << static_cast<int>(mode) << " shift " << tx << "," << ty << " at " << r << "," << x;
          }
        }
    }
  }
}

// Keras' apply_affine_transform in double precision: matrix product in (row, col), offset to the centre,
// scipy-style bilinear sampling with the fill mode.
// `spread` receives, per output value, the range (max - min) of its four bilinear taps.
Image reference_affine(const Image& in, int h, int w, int c, const AugmentParams& p, FillMode mode, float cval,
                       std::vector<int>* spread) {
  const double d = M_PI / 180;
  using M3 = std::array<double, 9>;
  auto mul = [](const M3& a, const M3& b) {
    M3 r{};
    for (int i = 0; i < 3; ++i)
      for (int j = 0; j < 3; ++j)
        for (int k = 0; k < 3; ++k) r[i * 3 + j] += a[i * 3 + k] * b[k * 3 + j];
    return r;
  };
  const M3 rot = {
      std::cos(p.theta * d), -std::sin(p.theta * d), 0, std::sin(p.theta * d), std::cos(p.theta * d), 0, 0, 0, 1};
  const M3 shift = {1, 0, p.tx, 0, 1, p.ty, 0, 0, 1};
  const M3 shear = {1, -std::sin(p.shear * d), 0, 0, std::cos(p.shear * d), 0, 0, 0, 1};
  const M3 zoom = {p.zx, 0, 0, 0, p.zy, 0, 0, 0, 1};
  const double oy = h / 2.0 - 0.5, ox = w / 2.0 - 0.5;
  const M3 off = {1, 0, oy, 0, 1, ox, 0, 0, 1}, reset = {1, 0, -oy, 0, 1, -ox, 0, 0, 1};
  const M3 m = mul(mul(off, mul(mul(mul(rot, shift), shear), zoom)), reset);
  Image out(in.size());
  std::vector<int> taps(in.size());
  for (int r = 0; r < h; ++r)
    for (int x = 0; x < w; ++x) {
      const double sr = m[0] * r + m[1] * x + m[2], sx = m[3] * r + m[4] * x + m[5];
      const int r0 = static_cast<int>(std::floor(sr)), x0 = static_cast<int>(std::floor(sx));
      const double fr = sr - r0, fx = sx - x0;
      double v[4] = {0, 0, 0, 0};
      for (int k = 0; k < c; ++k) {
        auto px = [&](int rr, int xx) -> double {
          const int br = border(rr, h, mode), bx = border(xx, w, mode);
          return (br < 0 || bx < 0) ? cval : at(in, w, c, br, bx, k);
        };
        v[k] = (1 - fr) * ((1 - fx) * px(r0, x0) + fx * px(r0, x0 + 1)) +
               fr * ((1 - fx) * px(r0 + 1, x0) + fx * px(r0 + 1, x0 + 1));
        const double t[4] = {px(r0, x0), px(r0, x0 + 1), px(r0 + 1, x0), px(r0 + 1, x0 + 1)};
        taps[(static_cast<size_t>(r) * w + x) * c + k] =
            static_cast<int>(*std::max_element(t, t + 4) - *std::min_element(t, t + 4));
      }
      if (p.grayscale && c == 3) v[0] = v[1] = v[2] = 0.299 * v[0] + 0.587 * v[1] + 0.114 * v[2];
      for (int k = 0; k < c; ++k)
        out[(static_cast<size_t>(r) * w + x) * c + k] = static_cast<uint8_t>(std::lround(v[k]));
    }
  Image flipped(out.size());
  spread->assign(out.size(), 0);
  for (int r = 0; r < h; ++r)
    for (int x = 0; x < w; ++x)
      for (int k = 0; k < c; ++k) {
        const size_t dst = (static_cast<size_t>(r) * w + x) * c + k;
        const size_t src =
            (static_cast<size_t>(p.flip_vertical ? h - 1 - r : r) * w + (p.flip_horizontal ? w - 1 - x : x)) * c + k;
        flipped[dst] = out[src];
        (*spread)[dst] = taps[src];
      }
  return flipped;
}

TEST_P(AugmentKernels, AffineMatchesDoublePrecisionKerasReference) {
  const int h = 40, w = 45, c = 3;  // 45: the vector kernel's last group of 8 is partial
  const Image in = smooth_image(h, w, c);
  const AugmentParams cases[] = {
      {/*theta*/ 17, /*tx*/ 2.5, /*ty*/ -4.25, /*shear*/ 0, /*zx*/ 1, /*zy*/ 1, false, false, false},
      {0, 0, 0, /*shear*/ 12, 1, 1, false, false, false},
      {0, 0, 0, 0, /*zx*/ 1.3, /*zy*/ 0.75, false, false, false},
      {-33, -6.5, 3.75, -8, 0.85, 1.15, true, false, false},
      {5, 1, 1, 3, 1.1, 0.9, true, true, false},
      {12, 3, -2, 0, 1, 1, false, false, /*grayscale*/ true},
      // Far outside the image (beyond the kernel's border tables): the exact scalar fallback.
      {40, 30, -50, 60, 4.0, 3.0, false, false, false},
  };
  for (FillMode mode : {FillMode::kNearest, FillMode::kConstant, FillMode::kReflect, FillMode::kWrap}) {
    for (const AugmentParams& p : cases) {
      const Image out = apply(in, h, w, c, p, mode, 31);
      std::vector<int> spread;
      const Image ref = reference_affine(in, h, w, c, p, mode, 31, &spread);
      // Ours samples at float coordinates: within 1 (rounding) of the double-precision reference.
      for (size_t i = 0; i < out.size(); ++i)
        ASSERT_LE(std::abs(int{out[i]} - int{ref[i]}), 1)
            << "value " << i << " theta " << p.theta << " shear " << p.shear << " zoom " << p.zx << "," << p.zy
            << " fill " << static_cast<int>(mode);
      // cv::warpAffine, an independent implementation, agrees with the reference too, up to its
      // coordinate quantization (1/32 pixel: a value may move by spread/32 of its taps' range).
      if (p.grayscale) continue;
      double m[6];
      augment_inverse_map(p, h, w, m);
      const int borders[] = {cv::BORDER_REPLICATE, cv::BORDER_CONSTANT, cv::BORDER_REFLECT, cv::BORDER_WRAP};
      cv::Mat warped;
      cv::warpAffine(cv::Mat(h, w, CV_8UC3, const_cast<uint8_t*>(in.data())), warped, cv::Mat(2, 3, CV_64F, m),
                     cv::Size(w, h), cv::INTER_LINEAR | cv::WARP_INVERSE_MAP, borders[static_cast<int>(mode)],
                     cv::Scalar::all(31));
      for (size_t i = 0; i < out.size(); ++i)
        ASSERT_LE(std::abs(int{warped.data[i]} - int{ref[i]}), 1 + spread[i] / 32) << "cv::warpAffine, value " << i;
    }
  }
}

TEST_P(AugmentKernels, GrayscaleIsLuma) {
  const int h = 30, w = 30, c = 3;
  const Image in = random_image(h, w, c, 4);
  AugmentParams p;
  p.grayscale = true;
  const Image out = apply(in, h, w, c, p);
  int checked = 0;
  for (int i = 0; i < h * w; ++i) {
    const double y = 0.299 * in[3 * i] + 0.587 * in[3 * i + 1] + 0.114 * in[3 * i + 2];
    ASSERT_EQ(out[3 * i], out[3 * i + 1]);
    ASSERT_EQ(out[3 * i], out[3 * i + 2]);
    // The fixed-point weights differ from 0.299/0.587/0.114 by < 1e-5, so only values within 0.01 of a
    // rounding tie may round the other way.
    if (std::abs(y - std::floor(y) - 0.5) < 0.01) {
      EXPECT_LE(std::abs(out[3 * i] - y), 0.51);
    } else {
      EXPECT_EQ(out[3 * i], static_cast<int>(std::lround(y))) << "pixel " << i;
      ++checked;
    }
  }
  EXPECT_GT(checked, h * w * 9 / 10);
  // Grayscale on a 1-channel image is a no-op.
  const Image gray = random_image(5, 5, 1, 5);
  EXPECT_EQ(apply(gray, 5, 5, 1, p), gray);
}

TEST(Augment, DrawsAreDeterministicAndWithinRanges) {
  AugmentOptions o;
  o.rotation_range = 20;
  o.width_shift_range = 0.2f;
  o.height_shift_range = 0.1f;
  o.shear_range = 5;
  o.zoom_range = 0.25f;
  o.horizontal_flip = true;
  o.random_grayscale = 0.3f;
  const int h = 64, w = 48;
  int flips = 0, grays = 0, vflips = 0;
  const int n = 4000;
  for (int i = 0; i < n; ++i) {
    const AugmentParams a = draw_augment_params(o, h, w, 7, 2, i);
    const AugmentParams b = draw_augment_params(o, h, w, 7, 2, i);
    ASSERT_EQ(a.theta, b.theta);
    ASSERT_EQ(a.tx, b.tx);
    ASSERT_EQ(a.zy, b.zy);
    ASSERT_EQ(a.flip_horizontal, b.flip_horizontal);
    ASSERT_LE(std::abs(a.theta), 20);
    ASSERT_LE(std::abs(a.tx), 0.1 * h + 1e-9);
    ASSERT_LE(std::abs(a.ty), 0.2 * w + 1e-6);
    ASSERT_LE(std::abs(a.shear), 5);
    ASSERT_GE(a.zx, 0.75 - 1e-6);
    ASSERT_LE(a.zx, 1.25 + 1e-6);
    ASSERT_GE(a.zy, 0.75 - 1e-6);
    ASSERT_LE(a.zy, 1.25 + 1e-6);
    flips += a.flip_horizontal;
    vflips += a.flip_vertical;
    grays += a.grayscale;
  }
  EXPECT_EQ(vflips, 0);  // vertical_flip is off
  // Binomial(4000, p): 5 standard deviations either side (draws are deterministic: this cannot flake).
  EXPECT_NEAR(flips, n * 0.5, 5 * std::sqrt(n * 0.25));
  EXPECT_NEAR(grays, n * 0.3, 5 * std::sqrt(n * 0.21));
  // Another index, epoch or seed changes the draws.
  const AugmentParams base = draw_augment_params(o, h, w, 7, 2, 0);
  EXPECT_NE(base.theta, draw_augment_params(o, h, w, 7, 2, 1).theta);
  EXPECT_NE(base.theta, draw_augment_params(o, h, w, 7, 3, 0).theta);
  EXPECT_NE(base.theta, draw_augment_params(o, h, w, 8, 2, 0).theta);
  // Turning one option off leaves the other draws as they were.
  AugmentOptions no_flip = o;
  no_flip.horizontal_flip = false;
  no_flip.shear_range = 0;
  const AugmentParams c = draw_augment_params(no_flip, h, w, 7, 2, 0);
  EXPECT_EQ(c.theta, base.theta);
  EXPECT_EQ(c.zx, base.zx);
  EXPECT_EQ(c.shear, 0);
  EXPECT_FALSE(c.flip_horizontal);
  // Everything off: the identity, and augment_image leaves the pixels untouched.
  const AugmentOptions none;
  EXPECT_FALSE(none.enabled());
  const AugmentParams id = draw_augment_params(none, h, w, 7, 2, 0);
  EXPECT_FALSE(id.is_affine());
  EXPECT_FALSE(id.flip_horizontal || id.flip_vertical || id.grayscale);
  Image img = random_image(8, 8, 3, 9);
  const Image before = img;
  augment_image(img.data(), 8, 8, 3, none, 1, 0, 0);
  EXPECT_EQ(img, before);
}

// Every transform at once, strongly: rotation, shifts, shear, zoom, both flips, grayscale.
AugmentOptions every_transform() {
  AugmentOptions o;
  o.rotation_range = 30;
  o.width_shift_range = o.height_shift_range = 0.3f;
  o.shear_range = 15;
  o.zoom_range = 0.3f;
  o.horizontal_flip = o.vertical_flip = true;
  o.random_grayscale = 0.5f;
  return o;
}

TEST(Augment, SimdAndScalarKernelsAgree) {
  const AugmentOptions o = every_transform();
  const float scale[3] = {0.02f, 0.03f, 0.01f}, shift[3] = {-1.5f, -2.f, 0.5f};
  for (const auto& [h, w, c] : {std::tuple<int, int, int>{64, 64, 3}, {28, 28, 1}, {19, 37, 3}}) {
    const Image in = random_image(h, w, c, 10);
    for (FillMode mode : {FillMode::kNearest, FillMode::kConstant, FillMode::kReflect, FillMode::kWrap}) {
      for (int64_t index = 0; index < 20; ++index) {
        const AugmentParams p = draw_augment_params(o, h, w, 3, 0, index);
        std::vector<float> simd(in.size()), scalar(in.size());
        set_augment_simd(true);
        augment_normalize(in.data(), h, w, c, p, mode, 90, scale, shift, simd.data());
        set_augment_simd(false);
        augment_normalize(in.data(), h, w, c, p, mode, 90, scale, shift, scalar.data());
        set_augment_simd(true);
        for (size_t i = 0; i < in.size(); ++i)
          ASSERT_NEAR(simd[i], scalar[i], 1e-4) << h << "x" << w << "x" << c << " fill " << static_cast<int>(mode)
                                                << " index " << index << " value " << i;
      }
    }
  }
}

TEST(Augment, FusedNormalizationIsTheUint8TransformUnrounded) {
  AugmentOptions o;
  o.rotation_range = 25;
  o.zoom_range = 0.2f;
  o.horizontal_flip = true;
  o.random_grayscale = 0.5f;
  const int h = 24, w = 20, c = 3;
  const Image in = random_image(h, w, c, 11);
  const float scale[3] = {0.5f, 2.f, 1.f}, shift[3] = {3.f, -1.f, 0.f};
  for (int64_t index = 0; index < 10; ++index) {
    const AugmentParams p = draw_augment_params(o, h, w, 1, 4, index);
    std::vector<float> planes(in.size());
    augment_normalize(in.data(), h, w, c, p, FillMode::kWrap, 0, scale, shift, planes.data());
    const Image rounded = apply(in, h, w, c, p, FillMode::kWrap);
    for (int k = 0; k < c; ++k)
      for (int i = 0; i < h * w; ++i) {
        const float value = (planes[k * h * w + i] - shift[k]) / scale[k];
        ASSERT_NEAR(value, rounded[i * c + k], 0.5 + 1e-3) << "index " << index;
      }
  }
}

// data.normalize_on device: the byte planes are the float planes of a unit affine, rounded half up, byte for
// byte, with either kernel, at widths that leave a partial vector (37) and under every fill mode.
TEST_P(AugmentKernels, BytePlanesAreTheUnitTransformRoundedHalfUp) {
  const AugmentOptions o = every_transform();
  const float ones[3] = {1, 1, 1}, zeros[3] = {0, 0, 0};
  for (const auto& [h, w, c] : {std::tuple<int, int, int>{64, 64, 3}, {28, 28, 1}, {19, 37, 3}}) {
    const Image in = random_image(h, w, c, 12);
    for (FillMode mode : {FillMode::kNearest, FillMode::kConstant, FillMode::kReflect, FillMode::kWrap}) {
      for (int64_t index = 0; index < 12; ++index) {
        const AugmentParams p = draw_augment_params(o, h, w, 7, 0, index);
        std::vector<float> planes(in.size());
        augment_normalize(in.data(), h, w, c, p, mode, 90, ones, zeros, planes.data());
        Image bytes(in.size(), 7);
        augment_to_uint8(in.data(), h, w, c, p, mode, 90, bytes.data());
        for (size_t i = 0; i < in.size(); ++i) {
          const auto expected = static_cast<uint8_t>(std::clamp(planes[i] + 0.5f, 0.0f, 255.0f));
          ASSERT_EQ(bytes[i], expected) << h << "x" << w << "x" << c << " fill " << static_cast<int>(mode) << " index "
                                        << index << " value " << i << " (" << planes[i] << ")";
        }
      }
    }
  }
}

TEST(Augment, AugmentImageAppliesTheDrawnParameters) {
  AugmentOptions o;
  o.rotation_range = 30;
  o.zoom_range = 0.2f;
  o.horizontal_flip = true;
  o.fill_mode = FillMode::kReflect;
  const Image in = random_image(16, 16, 3, 6);
  for (int64_t index : {0, 1, 2, 3}) {
    Image img = in;
    augment_image(img.data(), 16, 16, 3, o, 5, 1, index);
    EXPECT_EQ(img, apply(in, 16, 16, 3, draw_augment_params(o, 16, 16, 5, 1, index), FillMode::kReflect));
  }
}

TEST(Augment, BadOptionsAreUserErrors) {
  EXPECT_EQ(parse_fill_mode("wrap", "--fill"), FillMode::kWrap);
  EXPECT_THROW(parse_fill_mode("mirror", "--fill"), UserError);
  AugmentOptions o;
  o.zoom_range = 1.5f;
  try {
    o.validate("config augment");
    FAIL();
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find("config augment.zoom_range"), std::string::npos) << e.what();
  }
  o.zoom_range = 0.2f;
  o.random_grayscale = -0.1f;
  EXPECT_THROW(o.validate("augment"), UserError);
}

}  // namespace
}  // namespace facetrain
