// Keras ImageDataGenerator-style augmentation (seed 003) plus random grayscale (seed 000) of uint8 HWC
// images, fused with normalization to float CHW for the loader. The draws for one image depend only on (seed, epoch,
// store index): the same image gets the same augmentation whatever the number of ranks or loader threads.
#pragma once

#include <cstdint>
#include <string>

namespace facetrain {

enum class FillMode { kNearest, kConstant, kReflect, kWrap };
FillMode parse_fill_mode(const std::string& name, const std::string& what);  // throws UserError

struct AugmentOptions {
  float rotation_range = 0;      // degrees: angle uniform in [-r, r]
  float width_shift_range = 0;   // fraction of width: shift uniform in [-s, s] * W
  float height_shift_range = 0;  // fraction of height
  float shear_range = 0;         // degrees, as Keras
  float zoom_range = 0;          // zoom uniform in [1 - z, 1 + z] (per axis, as Keras)
  bool horizontal_flip = false;  // with probability 1/2
  bool vertical_flip = false;    // with probability 1/2
  FillMode fill_mode = FillMode::kNearest;
  float cval = 0;              // fill value for kConstant, 0..255
  float random_grayscale = 0;  // probability of replacing RGB by its luma (kept 3 channels)
  bool enabled() const;
  // Throws UserError naming the field (prefix `what`, e.g. "config augment") for a value out of range.
  void validate(const std::string& what) const;
};

// One image's random transform, as Keras' get_random_transform draws it (pixels and degrees). The
// affine part maps output (row, col) to input coordinates about the image centre:
//   input = C * R(theta) * T(tx, ty) * Shear(shear) * Zoom(zx, zy) * C^-1 * output
// (scipy.ndimage.affine_transform convention, bilinear); then the flips, then grayscale.
struct AugmentParams {
  double theta = 0;       // rotation, degrees
  double tx = 0, ty = 0;  // shift in pixels along rows (height) and columns (width)
  double shear = 0;       // degrees
  double zx = 1, zy = 1;  // zoom along rows and columns (> 1 shows more of the image, smaller)
  bool flip_horizontal = false, flip_vertical = false;
  bool grayscale = false;
  bool is_affine() const;  // any of theta, tx, ty, shear, zx, zy away from the identity
};

// The draws for image `index` in `epoch`: a pure function of (options, size, seed, epoch, index). Every
// quantity is drawn whether or not its option is on, so enabling one option does not change the others.
AugmentParams draw_augment_params(const AugmentOptions& options, int height, int width, uint64_t seed, int64_t epoch,
                                  int64_t index);

// Augments and normalizes one image in one pass (the loader's path). For each output pixel (x, y):
// bilinear sample of `pixels` at the inverse map M (x, y), with `fill_mode` outside the image (flips
// are folded into M); then, when params.grayscale and C = 3, every channel becomes the luma
// 0.299 R + 0.587 G + 0.114 B (ITU-R 601, as PIL/torchvision); then
//   dst[c][y][x] = value * scale[c] + shift[c]        (float planes, C x H x W)
// Values stay fractional in between, as in Keras, which augments float arrays. Uses AVX2 gathers when
// the CPU has them (8 pixels at a time), else the same arithmetic in scalar code. Reads only inside
// `pixels`; no heap allocation after the first call on a thread (border tables are cached per thread).
void augment_normalize(const uint8_t* pixels, int height, int width, int channels, const AugmentParams& params,
                       FillMode fill_mode, float cval, const float* scale, const float* shift, float* dst);

// The same augmentation into byte planes (C x H x W uint8), each value rounded half up: what the loader
// hands over when the device normalizes (data.normalize_on device), a quarter of the float bytes.
void augment_to_uint8(const uint8_t* pixels, int height, int width, int channels, const AugmentParams& params,
                      FillMode fill_mode, float cval, uint8_t* dst);

// Whether augment_normalize may use the AVX2 kernel (default: yes when the CPU has AVX2 and FMA).
// Tests and benchmarks switch it off to check and time the portable scalar kernel. Process-wide.
void set_augment_simd(bool enabled);
bool augment_simd_active();
// "AVX2, gathered taps" | "AVX2, scalar tap loads" | "scalar": the kernel augment_normalize runs here.
std::string augment_kernel_name();

// The same transform on uint8 HWC pixels, in place (values rounded half up, as augment_to_uint8). For
// tests, previews and tools; uses a per-thread buffer.
void apply_augment(uint8_t* pixels, int height, int width, int channels, const AugmentParams& params,
                   FillMode fill_mode, float cval);

// Draws (draw_augment_params) and applies (apply_augment) the augmentation of image `index` in `epoch`.
void augment_image(uint8_t* pixels, int height, int width, int channels, const AugmentOptions& options, uint64_t seed,
                   int64_t epoch, int64_t index);

// The inverse map as cv::warpAffine takes it with WARP_INVERSE_MAP: output (x = col, y = row) to input
// (x, y), flips included. cv::warpAffine with this matrix is an independent implementation of the
// same transform (it quantizes coordinates to 1/32 pixel).
void augment_inverse_map(const AugmentParams& params, int height, int width, double matrix[6]);

}  // namespace facetrain
