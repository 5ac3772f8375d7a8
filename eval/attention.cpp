// ViT attention maps (see attention.h): class-token attention of the last block, attention rollout, min-max
// normalisation and the heat-map overlay (OpenCV resize, applyColorMap and addWeighted).
#include "eval/attention.h"

#include <torch/torch.h>

#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>

#include "core/error.h"

namespace facetrain {
namespace {

void check_attention(const std::vector<torch::Tensor>& attention) {
  FT_CHECK(!attention.empty(), "no attention blocks");
  for (const auto& a : attention) {
    FT_CHECK(a.dim() == 4 && a.size(2) == a.size(3) && a.size(2) >= 2,
             "attention must be (B, heads, T, T), got " << a.sizes());
    FT_CHECK(a.sizes() == attention.front().sizes(), "blocks disagree on the attention shape");
  }
}

}  // namespace

torch::Tensor class_token_attention(const std::vector<torch::Tensor>& attention) {
  check_attention(attention);
  const torch::Tensor& last = attention.back();
  // (B, heads, T, T) -> class-token query row 0 -> keys 1.. (the patches) -> mean over heads: (B, T-1).
  return last.select(2, 0).narrow(2, 1, last.size(3) - 1).to(torch::kFloat32).mean(1);
}

torch::Tensor attention_rollout(const std::vector<torch::Tensor>& attention) {
  check_attention(attention);
  const int64_t t = attention.front().size(2);
  const auto eye = torch::eye(t, torch::kFloat64).to(attention.front().device());
  torch::Tensor rollout;
  for (const auto& a : attention) {
    auto mixed = a.to(torch::kFloat64).mean(1) + eye;          // (B, T, T): heads averaged, residual added
    mixed = mixed / mixed.sum(-1, /*keepdim=*/true);          // rows sum to 1 again
    rollout = rollout.defined() ? torch::bmm(mixed, rollout) : mixed;  // later blocks multiply from the left
  }
  return rollout.select(1, 0).narrow(1, 1, t - 1).to(torch::kFloat32);
}

torch::Tensor normalize_maps(const torch::Tensor& maps) {
  FT_CHECK(maps.dim() == 2, "maps must be (B, P)");
  auto m = maps.to(torch::kFloat64);
  const auto low = std::get<0>(m.min(1, true));
  const auto high = std::get<0>(m.max(1, true));
  const auto spread = high - low;
  const auto flat = spread <= high.abs() * 1e-12;
  auto out = (m - low) / torch::where(flat, torch::ones_like(spread), spread);
  out = torch::where(flat, torch::zeros_like(out), out);
  return out.clamp(0.0, 1.0).to(torch::kFloat32);
}

std::vector<uint8_t> upscale_rgb(const uint8_t* image, int height, int width, int channels, int scale) {
  FT_CHECK(channels == 1 || channels == 3, "images must have 1 or 3 channels, got " << channels);
  FT_CHECK(scale >= 1, "scale must be >= 1");
  cv::Mat src(height, width, channels == 3 ? CV_8UC3 : CV_8UC1, const_cast<uint8_t*>(image));
  cv::Mat rgb;
  if (channels == 1) {
    cv::cvtColor(src, rgb, cv::COLOR_GRAY2RGB);
  } else {
    rgb = src.clone();
  }
  cv::Mat big;
  cv::resize(rgb, big, cv::Size(width * scale, height * scale), 0, 0, cv::INTER_NEAREST);
  return std::vector<uint8_t>(big.datastart, big.dataend);
}

std::vector<uint8_t> overlay_heat_map(const uint8_t* image, int height, int width, int channels,
                                      const float* map, int grid, int scale, double alpha) {
  FT_CHECK(grid >= 1 && alpha >= 0 && alpha <= 1, "bad overlay arguments");
  const std::vector<uint8_t> base = upscale_rgb(image, height, width, channels, scale);
  cv::Mat base_mat(height * scale, width * scale, CV_8UC3, const_cast<uint8_t*>(base.data()));

  // Bicubic upsampling of the patch grid to the display size; cubic overshoots a little, hence the clamp.
  cv::Mat small(grid, grid, CV_32FC1, const_cast<float*>(map));
  cv::Mat up;
  cv::resize(small, up, base_mat.size(), 0, 0, cv::INTER_CUBIC);
  cv::Mat heat8;
  up.convertTo(heat8, CV_8UC1, 255.0);  // saturates: values outside [0, 1] clamp to 0 / 255
  cv::Mat colour_bgr, colour;
  cv::applyColorMap(heat8, colour_bgr, cv::COLORMAP_JET);
  cv::cvtColor(colour_bgr, colour, cv::COLOR_BGR2RGB);

  cv::Mat blended;
  cv::addWeighted(base_mat, 1.0 - alpha, colour, alpha, 0.0, blended);
  return std::vector<uint8_t>(blended.datastart, blended.dataend);
}

}  // namespace facetrain
