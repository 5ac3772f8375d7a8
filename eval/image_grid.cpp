// Image grids (see image_grid.h).
#include "eval/image_grid.h"
#include "core/atomic_file.h"

#include <torch/torch.h>

#include <filesystem>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "core/error.h"

namespace facetrain {

ImageGrid make_image_grid(const torch::Tensor& images, int columns, float low, float high) {
  FT_CHECK(images.dim() == 4 && images.size(0) > 0, "expected N x C x H x W images");
  const int n = static_cast<int>(images.size(0));
  const int c = static_cast<int>(images.size(1));
  const int h = static_cast<int>(images.size(2));
  const int w = static_cast<int>(images.size(3));
  const int cols = std::max(1, std::min(columns, n));
  const int rows = (n + cols - 1) / cols;
  constexpr int kGap = 2;
  torch::Tensor u8 = ((images.detach().to(torch::kCPU, torch::kFloat32) - low) * (255.0f / (high - low)))
                         .round()
                         .clamp(0, 255)
                         .to(torch::kUInt8)
                         .permute({0, 2, 3, 1})
                         .contiguous();
  ImageGrid grid;
  grid.channels = c;
  grid.height = rows * h + (rows + 1) * kGap;
  grid.width = cols * w + (cols + 1) * kGap;
  grid.pixels.assign(static_cast<size_t>(grid.height) * grid.width * c, 255);
  const uint8_t* src = u8.data_ptr<uint8_t>();
  for (int i = 0; i < n; ++i) {
    const int y0 = kGap + (i / cols) * (h + kGap);
    const int x0 = kGap + (i % cols) * (w + kGap);
    for (int y = 0; y < h; ++y) {
      std::memcpy(&grid.pixels[(static_cast<size_t>(y0 + y) * grid.width + x0) * c],
                  src + (static_cast<size_t>(i) * h + y) * w * c, static_cast<size_t>(w) * c);
    }
  }
  return grid;
}

void write_png(const std::string& path, const ImageGrid& grid) {
  cv::Mat image(grid.height, grid.width, grid.channels == 3 ? CV_8UC3 : CV_8UC1,
                const_cast<uint8_t*>(grid.pixels.data()));
  cv::Mat out;
  if (grid.channels == 3) {
    cv::cvtColor(image, out, cv::COLOR_RGB2BGR);
  } else {
    out = image;
  }
  std::vector<uint8_t> png;
  FT_USER_CHECK(cv::imencode(".png", out, png), path << ": PNG encoding failed");
  write_file_atomically(path, std::string_view(reinterpret_cast<const char*>(png.data()), png.size()));
}

}  // namespace facetrain
