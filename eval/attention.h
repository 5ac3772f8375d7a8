// ViT attention maps for `facetrain eval attention`: the last block's class-token attention averaged over heads,
// and attention rollout across all blocks (S. Abnar, W. Zuidema, "Quantifying Attention Flow in Transformers",
// ACL 2020, arXiv:2005.00928), normalised to [0, 1] and laid over the image as a colour heat map.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <vector>

#include "runtime/process_context.h"
#include "eval/image_selection.h"

namespace facetrain {

// Every function reads the class token's row (token 0: models/vit.h puts the class token first and the patches
// after it in row-major order). Seed 001's notebook took the LAST PATCH's row (attention[:, -1, 1:]), which
// shows what one corner patch looks at, not what the classifier's token gathered; that is not copied here.

// attention: one (B, heads, T, T) float tensor per block (Vit::forward_with_attention), T = 1 + grid*grid.
// Returns (B, T-1): the last block's attention from the class token to every patch, averaged over heads.
// Not renormalised: the values are the raw softmax weights (they sum to 1 - weight on the class token itself).
torch::Tensor class_token_attention(const std::vector<torch::Tensor>& attention);

// Attention rollout, returns (B, T-1): per block average the heads, add the identity for the residual path and
// renormalise the rows (A' = (A + I) / 2, as every row of A sums to 1), multiply from the first block to the last
// (R = A'_L ... A'_1), and take the class token's row over the patches. Computed in float64.
torch::Tensor attention_rollout(const std::vector<torch::Tensor>& attention);

// Min-max normalisation of each row of (B, P) maps to [0, 1]. A row with no spread (max - min <= 1e-12 * max,
// i.e. every patch equally attended) becomes all zeros, so a uniform map stays uniform.
torch::Tensor normalize_maps(const torch::Tensor& maps);

// Colour heat map of one normalised grid x grid map (row-major, values in [0, 1]) over an image.
// image: H x W x C uint8 (C = 1 or 3, RGB), the stored pixels (not the model's normalised input).
// The map is upsampled to H*scale x W*scale bicubically (clamped to [0, 1]), coloured with OpenCV's JET map
// (blue = low, red = high) and alpha-blended: out = (1 - alpha) * image + alpha * colour. The image is upscaled
// with nearest neighbour by the integer `scale`. Returns (H*scale) x (W*scale) x 3 uint8 RGB.
std::vector<uint8_t> overlay_heat_map(const uint8_t* image, int height, int width, int channels, const float* map,
                                      int grid, int scale, double alpha);

// The stored image itself at the same display size, as RGB: (H*scale) x (W*scale) x 3 uint8.
std::vector<uint8_t> upscale_rgb(const uint8_t* image, int height, int width, int channels, int scale);

// Which maps to draw: "cls", "rollout" or "both". UserError starting with `what` (the flag or field) otherwise.
struct AttentionMethods {
  bool cls = true, rollout = true;
};
AttentionMethods parse_attention_methods(const std::string& name, const std::string& what);

// `facetrain eval attention`: for the selected images, the last block's class-token attention and attention
// rollout as heat-map overlays (method "cls", "rollout" or "both", blended with `alpha`), one image per map,
// attention_grid.png and attention.json in the output folder. The launcher checks the method, alpha in [0, 1]
// and batch_size >= 1.
struct AttentionRequest {
  VisualRequest visual = visual_request(16);
  std::string method = "both";
  double alpha = 0.5;
  int64_t batch_size = 32;  // images per forward pass per rank
};

// (collective) every rank: setup and the setup agreement (bad input: UserError naming the file, or the input
// as the request names it, on every rank), scoring on all ranks, files on rank 0.
void write_attention_maps(const AttentionRequest& request, ProcessContext& ctx);

}  // namespace facetrain
