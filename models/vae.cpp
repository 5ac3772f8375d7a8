// ResNet-style convolutional VAE and its closed-form KL term (see vae.h).
#include "models/vae.h"

#include <algorithm>

#include <torch/torch.h>

#include "core/error.h"

namespace facetrain {
namespace {

namespace nn = torch::nn;
namespace F = torch::nn::functional;

nn::Conv2d conv3x3(int64_t in, int64_t out) { return nn::Conv2d(nn::Conv2dOptions(in, out, 3).padding(1)); }

torch::Tensor upsample(const torch::Tensor& x, int64_t scale) {
  return F::interpolate(x, F::InterpolateFuncOptions()
                               .scale_factor(std::vector<double>{double(scale), double(scale)})
                               .mode(torch::kNearest));
}

}  // namespace

int64_t VaeOptions::num_blocks() const {
  int64_t n = 0;
  for (int64_t s = image_size; s > 4; s /= 2) ++n;
  return n;
}

std::vector<int64_t> VaeOptions::widths() const {
  std::vector<int64_t> w;
  for (int64_t i = 0; i < num_blocks(); ++i)
    w.push_back(base_width * std::min<int64_t>(int64_t{1} << i, max_multiplier));
  return w;
}

void VaeOptions::validate() const {
  const bool power = image_size >= 8 && (image_size & (image_size - 1)) == 0;  // 4 * 2^n, n >= 1
  FT_USER_CHECK(power, "model.vae.image_size must be 4 * 2^n with n >= 1 (8, 16, 32, 64, ...), got " << image_size);
  FT_USER_CHECK(channels > 0, "model.vae.channels must be positive, got " << channels);
  FT_USER_CHECK(latent_size > 0, "model.vae.latent_size must be positive, got " << latent_size);
  FT_USER_CHECK(base_width >= 2 && base_width % 2 == 0,
                "model.vae.base_width must be an even number >= 2, got " << base_width);
  FT_USER_CHECK(max_multiplier >= 1, "model.vae.max_multiplier must be >= 1, got " << max_multiplier);
  FT_USER_CHECK(leaky_slope >= 0, "model.vae.leaky_slope must be >= 0, got " << leaky_slope);
}

VaeResBlockImpl::VaeResBlockImpl(VaeResample resample, int64_t in, int64_t out, int64_t scale, double slope)
    : conv1_(conv3x3(in, out / 2)),
      bn1_(out / 2),
      conv2_(conv3x3(out / 2, out)),
      bn2_(out),
      conv3_(conv3x3(in, out)),
      resample_(resample),
      scale_(scale),
      slope_(slope) {
  register_module("conv1", conv1_);
  register_module("bn1", bn1_);
  register_module("conv2", conv2_);
  register_module("bn2", bn2_);
  register_module("conv3", conv3_);
}

torch::Tensor VaeResBlockImpl::resampled(const torch::Tensor& x) const {
  return resample_ == VaeResample::kDown ? torch::avg_pool2d(x, 2, 2) : upsample(x, scale_);
}

torch::Tensor VaeResBlockImpl::forward(const torch::Tensor& x) {
  auto skip = conv3_(resampled(x));
  // Activations in place (BatchNorm/add backward do not read their outputs; leaky_relu's reads its result).
  auto h = bn1_(conv1_(x));
  torch::leaky_relu_(h, slope_);
  h = bn2_(conv2_(resampled(h)));
  h = h + skip;
  return torch::leaky_relu_(h, slope_);
}

VaeImpl::VaeImpl(const VaeOptions& options)
    : options_((options.validate(), options)),
      conv_mu_(nn::Conv2dOptions(options.widths().back(), options.latent_size, 4)),
      conv_logvar_(nn::Conv2dOptions(options.widths().back(), options.latent_size, 4)),
      conv_out_(conv3x3(options.base_width / 2, options.channels)) {
  const auto& o = options_;
  const auto w = o.widths();
  const int64_t n = static_cast<int64_t>(w.size());
  for (int64_t i = 0; i < n; ++i) {
    VaeResBlock block(VaeResample::kDown, i == 0 ? o.channels : w[i - 1], w[i], 1, o.leaky_slope);
    encoder_->push_back(block);
    down_.push_back(block);
  }
  // Mirror: 1x1 latent -> 4x4 at the widest width, then one x2 block per encoder block, ending at
  // base_width / 2 channels at full resolution (RES_VAE's decoder for 64x64: z->8ch x4, 8ch->4ch, 4ch->2ch,
  // 2ch->ch, ch->ch/2, conv 3x3 to channels).
  auto add_up = [&](int64_t in, int64_t out, int64_t scale) {
    VaeResBlock block(VaeResample::kUp, in, out, scale, o.leaky_slope);
    decoder_->push_back(block);
    up_.push_back(block);
  };
  add_up(o.latent_size, w[n - 1], 4);
  for (int64_t i = n - 1; i >= 1; --i) add_up(w[i], w[i - 1], 2);
  add_up(w[0], o.base_width / 2, 2);
  register_module("encoder", encoder_);
  register_module("conv_mu", conv_mu_);
  register_module("conv_logvar", conv_logvar_);
  register_module("decoder", decoder_);
  register_module("conv_out", conv_out_);
}

std::pair<torch::Tensor, torch::Tensor> VaeImpl::encode(const torch::Tensor& images) {
  const auto& o = options_;
  FT_USER_CHECK(images.dim() == 4 && images.size(1) == o.channels && images.size(2) == o.image_size &&
                    images.size(3) == o.image_size,
                "VAE expects images (B, " << o.channels << ", " << o.image_size << ", " << o.image_size
                                          << ") (model.vae.channels / image_size), got " << images.sizes());
  auto h = images;
  for (auto& block : down_) h = block->forward(h);
  return {conv_mu_(h).flatten(1), conv_logvar_(h).flatten(1)};
}

torch::Tensor VaeImpl::decode(const torch::Tensor& z) {
  const auto& o = options_;
  FT_USER_CHECK(z.dim() == 2 && z.size(1) == o.latent_size,
                "VAE decoder expects latents (B, " << o.latent_size << ") (model.vae.latent_size), got " << z.sizes());
  auto h = z.view({z.size(0), o.latent_size, 1, 1});
  for (auto& block : up_) h = block->forward(h);
  h = conv_out_(h);
  switch (o.output) {
    case VaeOutput::kTanh: return torch::tanh(h);
    case VaeOutput::kSigmoid: return torch::sigmoid(h);
    case VaeOutput::kNone: break;
  }
  return h;
}

torch::Tensor VaeImpl::reparameterize(const torch::Tensor& mu, const torch::Tensor& logvar) {
  auto std = torch::exp(0.5 * logvar);
  return mu + torch::randn_like(std) * std;
}

VaeOutputs VaeImpl::forward(const torch::Tensor& images) {
  auto [mu, logvar] = encode(images);
  auto z = is_training() ? reparameterize(mu, logvar) : mu;
  return {decode(z), mu, logvar};
}

torch::Tensor kl_divergence(const torch::Tensor& mu, const torch::Tensor& logvar) {
  FT_CHECK(mu.sizes() == logvar.sizes() && mu.dim() == 2, "mu " << mu.sizes() << " logvar " << logvar.sizes());
  return (-0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum(1)).mean();
}

std::pair<float, float> VaeImpl::output_range() const {
  if (options_.output == VaeOutput::kSigmoid) return {0.0f, 1.0f};
  return {-1.0f, 1.0f};
}

}  // namespace facetrain
