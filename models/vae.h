// ResNet-style convolutional VAE: residual down blocks (avg-pool) to a 4x4 map, 4x4 conv heads to the latent
// mean and log-variance, reparameterisation, and a mirrored decoder of residual up blocks (nearest upsampling).
// Papers: D. P. Kingma, M. Welling, "Auto-Encoding Variational Bayes", ICLR 2014 (arXiv:1312.6114); the
// residual layout follows the CNN-VAE of L. Ditria (github.com/LukeDitria/CNN-VAE, RES_VAE.py) that seed 004
// trains with the perceptual loss of X. Hou et al., "Deep Feature Consistent Variational Autoencoder",
// WACV 2017 (arXiv:1610.00291).
#pragma once

#include <cstdint>
#include <vector>

#include <torch/nn/module.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/pimpl.h>
#include <torch/types.h>

#include "models/capabilities.h"
#include "models/sync_batch_norm.h"

namespace facetrain {

// Output activation of the decoder; it fixes the pixel range the data must be scaled to.
enum class VaeOutput {
  kTanh,     // images in [-1, 1] (default; same range as the DCGAN and the perceptual loss default)
  kSigmoid,  // images in [0, 1]
  kNone,     // unbounded (CNN-VAE's RES_VAE has no output activation)
};

struct VaeOptions {
  int64_t image_size = 64;    // 4 * 2^n, n >= 1 (8, 16, 32, 64, 128, ...): n residual down blocks to a 4x4 map
  int64_t channels = 3;       // image channels
  int64_t latent_size = 512;  // z dimension (CNN-VAE: 512)
  int64_t base_width = 64;    // width of the first down block; block i has base_width * min(2^i, max_multiplier)
  int64_t max_multiplier = 8;
  VaeOutput output = VaeOutput::kTanh;
  // Negative slope of the block activations. CNN-VAE calls F.rrelu(x) whose default (training=False) is a
  // fixed leaky ReLU with slope (1/8 + 1/3) / 2 = 0.229166..., kept here.
  double leaky_slope = (1.0 / 8.0 + 1.0 / 3.0) / 2.0;

  int64_t num_blocks() const;           // log2(image_size / 4)
  std::vector<int64_t> widths() const;  // encoder widths, first block first
  void validate() const;                // UserError naming model.vae.<field>
};

// RES_VAE's residual blocks, Res_down and Res_up: x -> act(BN2(conv2(r(act(BN1(conv1(x)))))) + conv3(r(x))),
// where the resampling r is a 2x2 average pool (down) or a nearest-neighbour upsample by `scale` (up).
enum class VaeResample { kDown, kUp };

struct VaeResBlockImpl : torch::nn::Module {
  VaeResBlockImpl(VaeResample resample, int64_t in, int64_t out, int64_t scale, double slope);
  torch::Tensor forward(const torch::Tensor& x);

  torch::nn::Conv2d conv1_;
  SyncBatchNorm2d bn1_;
  torch::nn::Conv2d conv2_;
  SyncBatchNorm2d bn2_;
  torch::nn::Conv2d conv3_;
  VaeResample resample_;
  int64_t scale_;  // kUp only
  double slope_;

 private:
  torch::Tensor resampled(const torch::Tensor& x) const;
};
TORCH_MODULE(VaeResBlock);

struct VaeOutputs {
  torch::Tensor recon;   // (B, channels, H, W)
  torch::Tensor mu;      // (B, latent_size)
  torch::Tensor logvar;  // (B, latent_size)
};

// Names: encoder.N.{conv1,bn1,conv2,bn2,conv3}.*, conv_mu.*, conv_logvar.*, decoder.N.*, conv_out.*.
// Decoder: decoder.0 = ResUp(latent -> widest, x4: 1x1 -> 4x4), then ResUp blocks halving the width back
// to base_width / 2 at full resolution, then conv_out (3x3 conv to channels) and the output activation.
struct VaeImpl : torch::nn::Module, ImageAutoencoder {
  explicit VaeImpl(const VaeOptions& options = {});

  // ImageAutoencoder (models/capabilities.h): the posterior mean, the decoder, its output range.
  torch::Tensor encode_mean(const torch::Tensor& images) override { return encode(images).first; }
  torch::Tensor decode(const torch::Tensor& z) override;  // (B, latent) -> images
  int64_t latent_size() const override { return options_.latent_size; }
  std::pair<float, float> output_range() const override;

  // Training mode: z = mu + eps * exp(logvar / 2) (eps from the global generator); eval mode: z = mu.
  VaeOutputs forward(const torch::Tensor& images);
  std::pair<torch::Tensor, torch::Tensor> encode(const torch::Tensor& images);  // {mu, logvar}
  static torch::Tensor reparameterize(const torch::Tensor& mu, const torch::Tensor& logvar);
  const VaeOptions& options() const { return options_; }

  VaeOptions options_;
  torch::nn::ModuleList encoder_;
  torch::nn::Conv2d conv_mu_;
  torch::nn::Conv2d conv_logvar_;
  torch::nn::ModuleList decoder_;
  torch::nn::Conv2d conv_out_;

 private:
  std::vector<VaeResBlock> down_;
  std::vector<VaeResBlock> up_;
};
TORCH_MODULE(Vae);

// KL(q(z|x) || N(0, I)) in closed form: -0.5 * sum_latent(1 + logvar - mu^2 - exp(logvar)), mean over the
// batch. mu, logvar: (B, latent). Returns a scalar.
torch::Tensor kl_divergence(const torch::Tensor& mu, const torch::Tensor& logvar);

}  // namespace facetrain
