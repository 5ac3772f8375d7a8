// Image grids for sample views: a batch of images (N x C x H x W float) tiled into one HxWxC uint8 RGB
// picture with a 2-pixel gap, written as PNG and/or logged to TensorBoard.
#pragma once

#include <torch/types.h>

#include <string>
#include <vector>

namespace facetrain {

struct ImageGrid {
  int height = 0, width = 0, channels = 0;
  std::vector<uint8_t> pixels;  // HWC, RGB or gray
};

// images: N x C x H x W with values in [low, high] (e.g. -1..1 for tanh outputs); `columns` per row.
ImageGrid make_image_grid(const torch::Tensor& images, int columns, float low, float high);
// Writes the grid as PNG atomically (temporary name, then rename). Throws UserError on failure.
void write_png(const std::string& path, const ImageGrid& grid);

}  // namespace facetrain
