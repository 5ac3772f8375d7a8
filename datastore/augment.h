// Keras ImageDataGenerator-style augmentation (seed 003) plus random grayscale (seed 000), on uint8 HWC
// images. The draws for one image depend only on (seed, epoch, store index): the same image gets the same
// augmentation whatever the number of ranks or loader threads.
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
  float cval = 0;                // fill value for kConstant, 0..255
  float random_grayscale = 0;    // probability of replacing RGB by its luma (kept 3 channels)
  bool enabled() const;
};

// Augments one image in place (H x W x C uint8). `scratch` must hold H*W*C bytes.
void augment_image(uint8_t* pixels, int height, int width, int channels, const AugmentOptions& options,
                   uint64_t seed, int64_t epoch, int64_t index, uint8_t* scratch);

}  // namespace facetrain
