// Options of small networks for tests (they build and run in milliseconds on a CPU): the shape-defining
// values in one call; a test changes anything else on the returned struct.
#pragma once

#include <cstdint>

#include "models/dcgan.h"
#include "models/vae.h"
#include "models/vit.h"

namespace facetrain::testing {

inline VitOptions tiny_vit_options(int64_t image, int64_t patch, int64_t channels, int64_t classes, int64_t width,
                                   int64_t depth, int64_t heads) {
  VitOptions o;
  o.image_size = image;
  o.patch_size = patch;
  o.channels = channels;
  o.num_classes = classes;
  o.width = width;
  o.depth = depth;
  o.heads = heads;
  return o;
}

inline VaeOptions tiny_vae_options(int64_t image, int64_t channels, int64_t latent, int64_t base_width) {
  VaeOptions o;
  o.image_size = image;
  o.channels = channels;
  o.latent_size = latent;
  o.base_width = base_width;
  return o;
}

inline DcganOptions tiny_dcgan_options(DcganArch arch, int64_t image, int64_t channels, int64_t z, int64_t width) {
  DcganOptions o;
  o.arch = arch;
  o.image_size = image;
  o.channels = channels;
  o.z_size = z;
  o.g_width = o.d_width = width;
  return o;
}

}  // namespace facetrain::testing
