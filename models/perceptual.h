// VGG16/VGG19 convolutional feature stacks with torchvision's layer indexing (features.N.weight) and the
// perceptual (feature-consistency) loss built on them.
// Papers: K. Simonyan, A. Zisserman, "Very Deep Convolutional Networks for Large-Scale Image Recognition",
// ICLR 2015 (arXiv:1409.1556); X. Hou et al., "Deep Feature Consistent Variational Autoencoder", WACV 2017
// (arXiv:1610.00291), whose VAE loss uses relu1_1, relu2_1, relu3_1 of VGG19 (the default here).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <torch/nn/module.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/pimpl.h>
#include <torch/types.h>

namespace facetrain {

enum class VggVariant { kVgg16, kVgg19 };

// Index in torchvision's `features` Sequential of a named layer of `variant`: "convB_C" (convolution output),
// "reluB_C" (after its ReLU) or "poolB" (after the B-th max-pool), B = block 1..5, C = conv within the block.
// E.g. VGG19: conv1_1 = 0, relu1_1 = 1, relu2_1 = 6, relu3_1 = 11, relu4_1 = 20, relu5_1 = 29.
// Throws UserError naming `field` and listing the valid names when `name` is unknown.
int64_t vgg_layer_index(VggVariant variant, const std::string& name, const std::string& field = "layers");

// torchvision vgg16/vgg19 `features` (no batch norm), built only up to `last_index` inclusive (layers past the
// deepest one a loss needs are never computed). Parameters: features.N.weight / features.N.bias for each
// conv N — exactly torchvision's names, so torchvision state dicts (saved as safetensors) load directly.
struct VggFeaturesImpl : torch::nn::Module {
  VggFeaturesImpl(VggVariant variant, int64_t last_index);
  // x: (B, 3, H, W) already ImageNet-normalised. Returns the outputs of the layers at `indices` (ascending
  // or not; each <= last_index), in the order given.
  std::vector<torch::Tensor> forward(const torch::Tensor& x, const std::vector<int64_t>& indices);

  VggVariant variant_;
  torch::nn::Sequential features_;
};
TORCH_MODULE(VggFeatures);

// Range of the images handed to the loss; both are mapped to [0, 1] and then ImageNet-normalised
// ((x - [0.485, 0.456, 0.406]) / [0.229, 0.224, 0.225]), as torchvision's VGG weights expect.
enum class PixelRange { kMinusOneToOne, kZeroToOne };

struct PerceptualOptions {
  VggVariant variant = VggVariant::kVgg19;
  std::vector<std::string> layers = {"relu1_1", "relu2_1", "relu3_1"};  // Deep Feature Consistent VAE
  std::vector<double> layer_weights;                                    // one per layer; empty = all 1
  PixelRange input_range = PixelRange::kMinusOneToOne;
  std::string weights;                 // safetensors file with torchvision names (features.N.*)
  bool allow_random_features = false;  // without weights: random (Kaiming) features, for tests only
};

// loss(input, target) = sum_l w_l * mean((vgg_l(input) - vgg_l(target))^2).
// Frozen: VGG parameters have requires_grad = false and the module stays in eval mode whatever train() is
// called with; gradients flow to `input` only (target features are computed without autograd). Inputs:
// (B, 1 or 3, H, W) in `input_range`; one channel is replicated to three. Not a trainable parameter set:
// keep it out of optimizers and gradient sync.
struct PerceptualLossImpl : torch::nn::Module {
  // Loads options.weights; throws UserError when no weights are given unless allow_random_features.
  explicit PerceptualLossImpl(const PerceptualOptions& options = {});
  torch::Tensor forward(const torch::Tensor& input, const torch::Tensor& target);
  // Features of the configured layers for images in input_range (for tests and diagnostics).
  std::vector<torch::Tensor> features(const torch::Tensor& images);
  // Loads torchvision-named VGG weights from a safetensors file (UserError naming the file on mismatch).
  void load_weights(const std::string& path);
  void train(bool on = true) override;

  PerceptualOptions options_;
  std::vector<int64_t> indices_;
  VggFeatures vgg_;

 private:
  torch::Tensor normalise(const torch::Tensor& images) const;
};
TORCH_MODULE(PerceptualLoss);

}  // namespace facetrain
