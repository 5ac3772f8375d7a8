// MobileNetV2 (see mobilenet_v2.h): torchvision's layout, initialisation and channel rounding.
#include "models/mobilenet_v2.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "models/sync_batch_norm.h"

namespace facetrain {
namespace {

namespace nn = torch::nn;

// torchvision's _make_divisible: the nearest multiple of 8, never below 90 % of the value.
int64_t make_divisible(double value, int64_t divisor = 8) {
  int64_t rounded = std::max<int64_t>(divisor, static_cast<int64_t>(value + divisor / 2.0) / divisor * divisor);
  if (rounded < 0.9 * value) rounded += divisor;
  return rounded;
}

// A Sequential with a plain forward, so it can sit inside another Sequential (LibTorch's AnyModule needs one).
struct ConvBnImpl : nn::SequentialImpl {
  torch::Tensor forward(const torch::Tensor& x) { return nn::SequentialImpl::forward(x); }
};
TORCH_MODULE(ConvBn);

// torchvision's Conv2dNormActivation: conv (no bias) -> BatchNorm -> ReLU6 (optional), as modules 0, 1, 2.
ConvBn conv_bn(int64_t in, int64_t out, int64_t kernel, int64_t stride, int64_t groups, bool relu6) {
  ConvBn s;
  s->push_back(nn::Conv2d(
      nn::Conv2dOptions(in, out, kernel).stride(stride).padding((kernel - 1) / 2).groups(groups).bias(false)));
  s->push_back(SyncBatchNorm2d(out));
  if (relu6) s->push_back(nn::Functional([](const torch::Tensor& x) { return torch::hardtanh(x, 0.0, 6.0); }));
  return s;
}

// (expand ratio t, output channels c, blocks n, first stride s), torchvision's inverted_residual_setting.
constexpr int64_t kSetting[7][4] = {{1, 16, 1, 1}, {6, 24, 2, 2},  {6, 32, 3, 2}, {6, 64, 4, 2},
                                    {6, 96, 3, 1}, {6, 160, 3, 2}, {6, 320, 1, 1}};

}  // namespace

void MobileNetV2Options::validate() const {
  FT_USER_CHECK(width_mult > 0 && width_mult <= 4,
                "model.mobilenet_v2.width_mult: " << width_mult << " is not in (0, 4]");
  FT_USER_CHECK(dropout >= 0 && dropout < 1, "model.mobilenet_v2.dropout: " << dropout << " is not in [0, 1)");
  FT_USER_CHECK(channels > 0 && num_classes > 0, "MobileNetV2 needs channels and classes");
}

MobileNetV2BlockImpl::MobileNetV2BlockImpl(int64_t in, int64_t out, int64_t stride, int64_t expand_ratio) {
  const int64_t hidden = static_cast<int64_t>(std::llround(static_cast<double>(in * expand_ratio)));
  residual = stride == 1 && in == out;
  // Registered under torchvision's indices: conv.0 (expand), conv.1 (depthwise), conv.2/.3 (linear + BN).
  if (expand_ratio != 1) conv->push_back(conv_bn(in, hidden, 1, 1, 1, true));
  conv->push_back(conv_bn(hidden, hidden, 3, stride, hidden, true));
  conv->push_back(nn::Conv2d(nn::Conv2dOptions(hidden, out, 1).bias(false)));
  conv->push_back(SyncBatchNorm2d(out));
  register_module("conv", conv);
}

torch::Tensor MobileNetV2BlockImpl::forward(const torch::Tensor& x) {
  return residual ? x + conv->forward(x) : conv->forward(x);
}

MobileNetV2Impl::MobileNetV2Impl(const MobileNetV2Options& options) : options_((options.validate(), options)) {
  const auto& o = options_;
  int64_t in = make_divisible(32 * o.width_mult);
  const int64_t last = make_divisible(1280 * std::max(1.0, o.width_mult));
  features_->push_back(conv_bn(o.channels, in, 3, 2, 1, true));
  for (const auto& row : kSetting) {
    const int64_t out = make_divisible(static_cast<double>(row[1]) * o.width_mult);
    for (int64_t i = 0; i < row[2]; ++i) {
      features_->push_back(MobileNetV2Block(in, out, i == 0 ? row[3] : 1, row[0]));
      in = out;
    }
  }
  features_->push_back(conv_bn(in, last, 1, 1, 1, true));
  classifier_->push_back(nn::Dropout(o.dropout));
  classifier_->push_back(nn::Linear(last, o.num_classes));
  register_module("features", features_);
  register_module("classifier", classifier_);
  // torchvision's initialisation.
  torch::NoGradGuard no_grad;
  for (auto& m : modules(/*include_self=*/false)) {
    if (auto* conv = m->as<nn::Conv2d>()) {
      nn::init::kaiming_normal_(conv->weight, 0.0, torch::kFanOut);
    } else if (auto* bn = m->as<SyncBatchNorm2d>()) {
      nn::init::ones_(bn->weight);
      nn::init::zeros_(bn->bias);
    } else if (auto* linear = m->as<nn::Linear>()) {
      nn::init::normal_(linear->weight, 0, 0.01);
      nn::init::zeros_(linear->bias);
    }
  }
}

torch::Tensor MobileNetV2Impl::forward(const torch::Tensor& images) {
  FT_USER_CHECK(
      images.dim() == 4 && images.size(1) == options_.channels && images.size(2) >= 32 && images.size(3) >= 32,
      "MobileNetV2 expects images (B, " << options_.channels << ", H >= 32, W >= 32), got " << images.sizes());
  auto x = features_->forward(images);
  x = torch::adaptive_avg_pool2d(x, {1, 1}).flatten(1);
  return classifier_->forward(x);
}

double MobileNetV2Impl::flops_per_image(int64_t height, int64_t width) const {
  // Walk the convolutions with the spatial size each one sees.
  double flops = 0;
  int64_t h = height, w = width;
  for (const auto& m : modules(/*include_self=*/false)) {
    if (const auto* conv = m->as<nn::Conv2d>()) {
      const auto& co = conv->options;
      const int64_t stride = co.stride()->at(0);
      const int64_t kernel = co.kernel_size()->at(0);
      const int64_t pad = (kernel - 1) / 2;
      h = (h + 2 * pad - kernel) / stride + 1;
      w = (w + 2 * pad - kernel) / stride + 1;
      flops += 2.0 * static_cast<double>(h * w) * static_cast<double>(co.out_channels()) *
               static_cast<double>(co.in_channels() / co.groups() * kernel * kernel);
    } else if (const auto* linear = m->as<nn::Linear>()) {
      flops += 2.0 * static_cast<double>(linear->options.in_features() * linear->options.out_features());
    }
  }
  return flops;
}

ParameterLayers MobileNetV2Impl::parameter_layers() {
  ParameterLayers out;
  out.blocks = kBlocks;
  for (const auto& p : named_parameters()) {
    ParameterLayer layer{p.key(), p.value()};
    if (p.key().rfind("classifier.", 0) == 0) {
      layer.layer = out.blocks + 1;
      layer.head = true;
    } else {
      layer.layer = std::stoll(p.key().substr(9, p.key().find('.', 9) - 9));  // "features.N."
    }
    out.parameters.push_back(std::move(layer));
  }
  return out;
}

std::string MobileNetV2Impl::input_description() const {
  return std::to_string(options_.height) + "x" + std::to_string(options_.width) + " input";
}

}  // namespace facetrain
