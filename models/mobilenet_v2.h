// MobileNetV2 classifier (seed 004's fine-tuned classifier), with torchvision's module tree and parameter
// names so a torchvision state dict exported as safetensors loads by name:
//   features.0.{0: conv 3x3 s2, 1: bn}   stem
//   features.1 .. features.17            inverted residual blocks: features.i.conv.{...}
//   features.18.{0: conv 1x1, 1: bn}     last 1x1 conv to 1280 (x width_mult when > 1)
//   classifier.1.{weight,bias}           Linear after Dropout (classifier.0)
// Paper: M. Sandler et al., "MobileNetV2: Inverted Residuals and Linear Bottlenecks", CVPR 2018
// (arXiv:1801.04381). Works on any input of at least 32 px (5 stride-2 stages, then global average pool).
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <vector>

#include "models/capabilities.h"

namespace facetrain {

struct MobileNetV2Options {
  int64_t channels = 3;               // input channels
  int64_t num_classes = 1000;         // classifier outputs
  double width_mult = 1.0;            // channel multiplier (rounded to multiples of 8, as torchvision)
  double dropout = 0.2;               // before the classifier
  int64_t height = 224, width = 224;  // the input images (any size >= 32 runs; these set the FLOP count)
  void validate() const;              // UserError naming model.mobilenet_v2.<field>
};

// An inverted residual block: [1x1 expand conv-BN-ReLU6] -> 3x3 depthwise conv-BN-ReLU6 -> 1x1 linear
// conv-BN, plus the input when stride 1 and the channel counts match.
struct MobileNetV2BlockImpl : torch::nn::Module {
  MobileNetV2BlockImpl(int64_t in, int64_t out, int64_t stride, int64_t expand_ratio);
  torch::Tensor forward(const torch::Tensor& x);
  torch::nn::Sequential conv;
  bool residual = false;
};
TORCH_MODULE(MobileNetV2Block);

struct MobileNetV2Impl : torch::nn::Module, ImageClassifier {
  explicit MobileNetV2Impl(const MobileNetV2Options& options);
  // images (B, channels, H, W), H and W >= 32 -> logits (B, num_classes).
  torch::Tensor forward(const torch::Tensor& images);
  const MobileNetV2Options& options() const { return options_; }
  // Blocks between the stem (features.0) and the classifier: features.1 .. features.18.
  static constexpr int64_t kBlocks = 18;
  // Forward FLOPs for one image of side `size` (2 per multiply-add, convolutions and the classifier).
  double flops_per_image(int64_t height, int64_t width) const;

  // ImageClassifier (models/capabilities.h): features.0 is the stem, features.1-18 the blocks, classifier.* the head.
  torch::Tensor logits(const torch::Tensor& images) override { return forward(images); }
  int64_t num_classes() const override { return options_.num_classes; }
  ParameterLayers parameter_layers() override;
  double flops_per_image() const override { return flops_per_image(options_.height, options_.width); }
  std::string input_description() const override;

 private:
  MobileNetV2Options options_;
  torch::nn::Sequential features_;
  torch::nn::Sequential classifier_;
};
TORCH_MODULE(MobileNetV2);

}  // namespace facetrain
