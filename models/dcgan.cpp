// DCGAN generator/discriminator (seed-002 and paper layouts) and the DCGAN weight init (see dcgan.h).
#include "models/dcgan.h"

#include <string>

#include <torch/torch.h>

#include "core/error.h"
#include "models/sync_batch_norm.h"

namespace facetrain {
namespace {

namespace nn = torch::nn;

nn::Conv2d down_conv(int64_t in, int64_t out) {
  return nn::Conv2d(nn::Conv2dOptions(in, out, 4).stride(2).padding(1).bias(false));
}
nn::ConvTranspose2d up_conv(int64_t in, int64_t out) {
  return nn::ConvTranspose2d(nn::ConvTranspose2dOptions(in, out, 4).stride(2).padding(1).bias(false));
}

}  // namespace

int64_t DcganOptions::num_layers() const {
  int64_t n = 0;
  for (int64_t s = image_size; s > 4; s /= 2) ++n;
  return n;
}

void DcganOptions::validate() const {
  const bool power = image_size >= 8 && (image_size & (image_size - 1)) == 0;  // 4 * 2^n, n >= 1
  FT_USER_CHECK(power, "model.dcgan.image_size must be 4 * 2^n with n >= 1 (8, 16, 32, 64, ...), got " << image_size);
  FT_USER_CHECK(channels > 0, "model.dcgan.channels must be positive, got " << channels);
  FT_USER_CHECK(z_size > 0, "model.dcgan.z_size must be positive, got " << z_size);
  FT_USER_CHECK(g_width > 0, "model.dcgan.g_width must be positive, got " << g_width);
  FT_USER_CHECK(d_width > 0, "model.dcgan.d_width must be positive, got " << d_width);
  FT_USER_CHECK(d_outputs > 0, "model.dcgan.d_outputs must be positive, got " << d_outputs);
  FT_USER_CHECK(leaky_slope >= 0, "model.dcgan.leaky_slope must be >= 0, got " << leaky_slope);
}

DcganOptions DcganOptions::seed32() { return DcganOptions{}; }

DcganOptions DcganOptions::paper64() {
  DcganOptions o;
  o.arch = DcganArch::kPaper;
  o.image_size = 64;
  o.g_width = 64;
  o.d_width = 64;
  return o;
}

// ---------------------------------------------------------------------------------------------------------

DcganGeneratorImpl::DcganGeneratorImpl(const DcganOptions& options) : options_((options.validate(), options)) {
  const auto& o = options_;
  const int64_t n = o.num_layers();
  const int64_t top = o.g_width << (n - 1);  // width at the 4x4 map
  if (o.arch == DcganArch::kSeed) {
    fc_ = register_module("fc", nn::Linear(o.z_size, top * 4 * 4));
    for (int64_t i = 0; i < n; ++i) {
      const bool last = i == n - 1;
      const int64_t in = o.g_width << (n - 1 - i);
      const int64_t out = last ? o.channels : in / 2;
      nn::Sequential seq;
      seq->push_back(up_conv(in, out));
      if (!last) seq->push_back(SyncBatchNorm2d(out));
      t_convs_.push_back(register_module("t_conv" + std::to_string(i + 1), seq));
    }
  } else {
    nn::Sequential seq;
    seq->push_back(nn::ConvTranspose2d(nn::ConvTranspose2dOptions(o.z_size, top, 4).stride(1).padding(0).bias(false)));
    seq->push_back(SyncBatchNorm2d(top));
    seq->push_back(nn::ReLU(true));
    for (int64_t i = 0; i < n; ++i) {
      const bool last = i == n - 1;
      const int64_t in = o.g_width << (n - 1 - i);
      const int64_t out = last ? o.channels : in / 2;
      seq->push_back(up_conv(in, out));
      if (!last) {
        seq->push_back(SyncBatchNorm2d(out));
        seq->push_back(nn::ReLU(true));
      } else {
        seq->push_back(nn::Tanh());
      }
    }
    main_ = register_module("main", seq);
  }
}

torch::Tensor DcganGeneratorImpl::forward(const torch::Tensor& z) {
  const auto& o = options_;
  FT_USER_CHECK((z.dim() == 2 || (z.dim() == 4 && z.size(2) == 1 && z.size(3) == 1)) && z.size(1) == o.z_size,
                "DCGAN generator expects latents (B, " << o.z_size << ") (model.dcgan.z_size), got " << z.sizes());
  const int64_t b = z.size(0);
  if (o.arch == DcganArch::kPaper) return main_->forward(z.view({b, o.z_size, 1, 1}));
  const int64_t top = o.g_width << (o.num_layers() - 1);
  auto x = fc_(z.view({b, o.z_size})).view({b, top, 4, 4});
  // Activations in place: neither BatchNorm's nor a convolution's backward reads its output, and relu/tanh
  // backward read only their result, so this saves one allocation and pass per layer with identical gradients.
  for (size_t i = 0; i < t_convs_.size(); ++i) {
    x = t_convs_[i]->forward(x);
    x = (i + 1 < t_convs_.size()) ? torch::relu_(x) : torch::tanh_(x);
  }
  return x;
}

DcganDiscriminatorImpl::DcganDiscriminatorImpl(const DcganOptions& options) : options_((options.validate(), options)) {
  const auto& o = options_;
  const int64_t n = o.num_layers();
  const int64_t top = o.d_width << (n - 1);
  if (o.arch == DcganArch::kSeed) {
    for (int64_t i = 0; i < n; ++i) {
      const int64_t in = i == 0 ? o.channels : o.d_width << (i - 1);
      const int64_t out = o.d_width << i;
      nn::Sequential seq;
      seq->push_back(down_conv(in, out));
      if (i > 0) seq->push_back(SyncBatchNorm2d(out));  // no BatchNorm on the first conv (seed 002)
      convs_.push_back(register_module("conv" + std::to_string(i + 1), seq));
    }
    fc_ = register_module("fc", nn::Linear(top * 4 * 4, o.d_outputs));
  } else {
    nn::Sequential seq;
    for (int64_t i = 0; i < n; ++i) {
      const int64_t in = i == 0 ? o.channels : o.d_width << (i - 1);
      const int64_t out = o.d_width << i;
      seq->push_back(down_conv(in, out));
      if (i > 0) seq->push_back(SyncBatchNorm2d(out));
      seq->push_back(nn::LeakyReLU(nn::LeakyReLUOptions().negative_slope(o.leaky_slope).inplace(true)));
    }
    seq->push_back(nn::Conv2d(nn::Conv2dOptions(top, o.d_outputs, 4).stride(1).padding(0).bias(false)));
    main_ = register_module("main", seq);
  }
}

torch::Tensor DcganDiscriminatorImpl::forward(const torch::Tensor& images) {
  const auto& o = options_;
  FT_USER_CHECK(images.dim() == 4 && images.size(1) == o.channels && images.size(2) == o.image_size &&
                    images.size(3) == o.image_size,
                "DCGAN discriminator expects images (B, " << o.channels << ", " << o.image_size << ", " << o.image_size
                                                          << ") (model.dcgan.channels / image_size), got "
                                                          << images.sizes());
  const int64_t b = images.size(0);
  if (o.arch == DcganArch::kPaper) return main_->forward(images).view({b, o.d_outputs});
  auto x = images;
  for (auto& conv : convs_) {
    x = conv->forward(x);
    torch::leaky_relu_(x, o.leaky_slope);  // in place: see the generator
  }
  return fc_(x.flatten(1));
}

double discriminator_flops_per_image(const DcganOptions& o) {
  double flops = 0;
  int64_t side = o.image_size;
  for (int64_t i = 0; i < o.num_layers(); ++i) {
    const int64_t in = i == 0 ? o.channels : o.d_width << (i - 1);
    side /= 2;
    flops += 2.0 * static_cast<double>(in * 16) * static_cast<double>((o.d_width << i) * side * side);
  }
  return flops + 2.0 * static_cast<double>((o.d_width << (o.num_layers() - 1)) * 16 * o.d_outputs);
}

void init_dcgan_weights(torch::nn::Module& module) {
  torch::NoGradGuard no_grad;
  auto init = [](torch::Tensor& weight, torch::Tensor& bias, double mean) {
    weight.normal_(mean, 0.02);
    if (bias.defined()) bias.zero_();
  };
  for (auto& m : module.modules(/*include_self=*/true)) {
    if (auto* conv = m->as<nn::Conv2d>()) {
      init(conv->weight, conv->bias, 0.0);
    } else if (auto* convt = m->as<nn::ConvTranspose2d>()) {
      init(convt->weight, convt->bias, 0.0);
    } else if (auto* linear = m->as<nn::Linear>()) {
      init(linear->weight, linear->bias, 0.0);
    } else if (auto* bn = m->as<SyncBatchNorm2d>()) {
      init(bn->weight, bn->bias, 1.0);
    }
  }
}

ParameterLayers DcganDiscriminatorImpl::parameter_layers() {
  ParameterLayers out;
  out.blocks = options_.num_layers() - 1;
  for (const auto& p : named_parameters()) {
    ParameterLayer layer{p.key(), p.value()};
    if (p.key().rfind("fc.", 0) == 0) {
      layer.layer = out.blocks + 1;
      layer.head = true;
    } else {
      layer.layer = std::stoll(p.key().substr(4, p.key().find('.') - 4)) - 1;  // "convN."
    }
    out.parameters.push_back(std::move(layer));
  }
  return out;
}

double DcganDiscriminatorImpl::flops_per_image() const { return discriminator_flops_per_image(options_); }

std::string DcganDiscriminatorImpl::input_description() const {
  return std::to_string(options_.num_layers()) + " stride-2 convs from " + std::to_string(options_.image_size) + "x" +
         std::to_string(options_.image_size);
}

}  // namespace facetrain
