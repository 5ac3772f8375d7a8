// DCGAN generator and discriminator in two layouts: the seed-002 32x32 network (linear in/out, three stride-2
// 4x4 convs) and the all-convolutional network of the DCGAN paper (64x64, ngf = ndf = 64), plus its init.
// Paper: A. Radford, L. Metz, S. Chintala, "Unsupervised Representation Learning with Deep Convolutional
// Generative Adversarial Networks", ICLR 2016 (arXiv:1511.06434).
#pragma once

#include <cstdint>

#include <torch/nn/module.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/pimpl.h>
#include <torch/types.h>

#include "models/capabilities.h"

namespace facetrain {

enum class DcganArch {
  // Seed 002 ("Face Generation"), generalised to image_size = 4 * 2^n:
  //   D: conv1 = [Conv(c->w,4,2,1,no bias)], conv2 = [Conv(w->2w), BN], conv3 = [Conv(2w->4w), BN], ...,
  //      LeakyReLU(0.2) after each, fc = Linear(4w*4*4 -> d_outputs).
  //   G: fc = Linear(z -> 4w*4*4) reshaped to (4w, 4, 4), t_conv1 = [ConvT(4w->2w), BN], t_conv2 = [ConvT(2w->w),
  //      BN] with ReLU, last t_convN = [ConvT(w->c)] then tanh. (No activation after G's fc, as in the seed.)
  // Names equal the seed's PyTorch state_dict keys (conv1.0.weight, conv2.1.running_mean, fc.weight, ...).
  kSeed,
  // The paper's network as in pytorch/examples dcgan (state_dict keys main.N.*):
  //   G: ConvT(z->8g,4,1,0) BN ReLU, ConvT(8g->4g,4,2,1) BN ReLU, ... ConvT(g->c,4,2,1) tanh.
  //   D: Conv(c->d,4,2,1) LReLU, Conv(d->2d) BN LReLU, ... Conv(8d->d_outputs,4,1,0)  (logits, no sigmoid).
  // (widths for 64x64; other sizes add or drop stride-2 layers, widest layer next to the 4x4 map.)
  kPaper,
};

struct DcganOptions {
  DcganArch arch = DcganArch::kSeed;
  int64_t image_size = 32;   // output/input height = width; 4 * 2^n with n >= 1 (8, 16, 32, 64, 128, ...)
  int64_t channels = 3;      // image channels
  int64_t z_size = 100;      // latent dimension
  int64_t g_width = 32;      // generator base width (seed: conv_dim 32; paper: ngf 64)
  int64_t d_width = 32;      // discriminator base width (seed: conv_dim 32; paper: ndf 64)
  int64_t d_outputs = 1;     // discriminator outputs (1 logit; >1 to use D as a classifier)
  double leaky_slope = 0.2;  // discriminator LeakyReLU slope

  // Number of stride-2 layers: log2(image_size / 4).
  int64_t num_layers() const;
  // Throws UserError naming model.dcgan.<field> when inconsistent.
  void validate() const;
  // Defaults of each architecture: kSeed 32x32 conv_dim 32; kPaper 64x64 ngf = ndf = 64.
  static DcganOptions seed32();
  static DcganOptions paper64();
};

// Generator: z (B, z_size) or (B, z_size, 1, 1) -> images (B, channels, image_size, image_size) in [-1, 1].
struct DcganGeneratorImpl : torch::nn::Module, ImageGenerator {
  explicit DcganGeneratorImpl(const DcganOptions& options = {});
  torch::Tensor forward(const torch::Tensor& z);
  const DcganOptions& options() const { return options_; }
  // ImageGenerator (models/capabilities.h).
  torch::Tensor generate(const torch::Tensor& z) override { return forward(z); }
  int64_t latent_size() const override { return options_.z_size; }

  DcganOptions options_;
  torch::nn::Linear fc_{nullptr};               // kSeed
  std::vector<torch::nn::Sequential> t_convs_;  // kSeed: registered as t_conv1, t_conv2, ...
  torch::nn::Sequential main_{nullptr};         // kPaper
};
TORCH_MODULE(DcganGenerator);

// Discriminator: images (B, channels, image_size, image_size) -> logits (B, d_outputs) (no sigmoid: use
// BCE-with-logits). With d_outputs > 1 it is model.cnn, a classifier (its spec names it as one; a DCGAN's
// discriminator is never offered as one).
struct DcganDiscriminatorImpl : torch::nn::Module, ImageClassifier {
  explicit DcganDiscriminatorImpl(const DcganOptions& options = {});
  torch::Tensor forward(const torch::Tensor& images);
  const DcganOptions& options() const { return options_; }
  // ImageClassifier (models/capabilities.h): conv1 is the stem, conv2..convN the blocks, fc the head.
  torch::Tensor logits(const torch::Tensor& images) override { return forward(images); }
  int64_t num_classes() const override { return options_.d_outputs; }
  ParameterLayers parameter_layers() override;
  double flops_per_image() const override;
  std::string input_description() const override;

  DcganOptions options_;
  std::vector<torch::nn::Sequential> convs_;  // kSeed: registered as conv1, conv2, ...
  torch::nn::Linear fc_{nullptr};             // kSeed
  torch::nn::Sequential main_{nullptr};       // kPaper
};
TORCH_MODULE(DcganDiscriminator);

// Forward FLOPs of one image through the discriminator (2 per multiply-add of the convs and the head).
double discriminator_flops_per_image(const DcganOptions& options);

// DCGAN paper init, applied to every submodule of `module`: Conv/ConvTranspose/Linear weights ~ N(0, 0.02)
// and their biases 0; BatchNorm weight (gamma) ~ N(1, 0.02), bias (beta) 0. Draws from the global generator.
void init_dcgan_weights(torch::nn::Module& module);

}  // namespace facetrain
