// VGG feature stacks with torchvision indexing and the perceptual loss (see perceptual.h).
#include "models/perceptual.h"

#include <algorithm>
#include <map>
#include <sstream>

#include <torch/torch.h>

#include "core/error.h"
#include "models/pretrained.h"
#include "models/safetensors.h"

namespace facetrain {
namespace {

namespace nn = torch::nn;

// torchvision cfgs "D" (vgg16) and "E" (vgg19): conv widths, 0 = max-pool.
std::vector<int64_t> vgg_config(VggVariant v) {
  if (v == VggVariant::kVgg16) return {64, 64, 0, 128, 128, 0, 256, 256, 256, 0, 512, 512, 512, 0, 512, 512, 512, 0};
  return {64, 64, 0, 128, 128, 0, 256, 256, 256, 256, 0, 512, 512, 512, 512, 0, 512, 512, 512, 512, 0};
}

const char* variant_name(VggVariant v) { return v == VggVariant::kVgg16 ? "vgg16" : "vgg19"; }

// Layer name -> torchvision features index, in layer order.
std::vector<std::pair<std::string, int64_t>> vgg_layer_names(VggVariant v) {
  std::vector<std::pair<std::string, int64_t>> names;
  int64_t index = 0, block = 1, conv = 1;
  for (int64_t c : vgg_config(v)) {
    if (c == 0) {
      names.emplace_back("pool" + std::to_string(block), index++);
      ++block;
      conv = 1;
    } else {
      const std::string suffix = std::to_string(block) + "_" + std::to_string(conv++);
      names.emplace_back("conv" + suffix, index++);
      names.emplace_back("relu" + suffix, index++);
    }
  }
  return names;
}

}  // namespace

int64_t vgg_layer_index(VggVariant variant, const std::string& name, const std::string& field) {
  std::ostringstream known;
  for (const auto& [n, i] : vgg_layer_names(variant)) {
    if (n == name) return i;
    known << (known.tellp() > 0 ? ", " : "") << n;
  }
  throw UserError(field + ": unknown " + variant_name(variant) + " layer '" + name + "' (known: " + known.str() + ")");
}

VggFeaturesImpl::VggFeaturesImpl(VggVariant variant, int64_t last_index) : variant_(variant) {
  int64_t index = 0, in = 3;
  for (int64_t c : vgg_config(variant)) {
    if (index > last_index) break;
    if (c == 0) {
      features_->push_back(nn::MaxPool2d(nn::MaxPool2dOptions(2).stride(2)));
      ++index;
      continue;
    }
    nn::Conv2d conv(nn::Conv2dOptions(in, c, 3).padding(1));
    // torchvision's VGG init (random features are only for tests): Kaiming normal, fan_out, ReLU gain.
    nn::init::kaiming_normal_(conv->weight, 0.0, torch::kFanOut, torch::kReLU);
    nn::init::zeros_(conv->bias);
    features_->push_back(conv);
    ++index;
    if (index > last_index) break;
    features_->push_back(nn::ReLU());
    ++index;
    in = c;
  }
  register_module("features", features_);
}

std::vector<torch::Tensor> VggFeaturesImpl::forward(const torch::Tensor& x, const std::vector<int64_t>& indices) {
  const int64_t deepest = indices.empty() ? -1 : *std::max_element(indices.begin(), indices.end());
  FT_CHECK(deepest < static_cast<int64_t>(features_->size()), "layer " << deepest << " beyond the built stack");
  std::map<int64_t, torch::Tensor> captured;
  auto h = x;
  auto wanted = [&](int64_t i) { return std::find(indices.begin(), indices.end(), i) != indices.end(); };
  for (int64_t i = 0; i <= deepest; ++i) {
    if (auto* conv = features_[i]->as<nn::Conv2d>()) {
      h = conv->forward(h);
    } else if (features_[i]->as<nn::ReLU>()) {
      // In place unless the conv output before it was asked for (a conv's backward does not read its output).
      h = wanted(i - 1) ? torch::relu(h) : torch::relu_(h);
    } else {
      h = features_[i]->as<nn::MaxPool2d>()->forward(h);
    }
    if (wanted(i)) captured[i] = h;
  }
  std::vector<torch::Tensor> out;
  for (int64_t i : indices) out.push_back(captured.at(i));
  return out;
}

// ---------------------------------------------------------------------------------------------------------

namespace {
std::vector<int64_t> layer_indices(const PerceptualOptions& o) {
  FT_USER_CHECK(!o.layers.empty(), "model.vae.perceptual.layers must name at least one VGG layer");
  FT_USER_CHECK(o.layer_weights.empty() || o.layer_weights.size() == o.layers.size(),
                "model.vae.perceptual.layer_weights has " << o.layer_weights.size() << " entries for "
                                                          << o.layers.size() << " layers");
  std::vector<int64_t> idx;
  for (const auto& name : o.layers) idx.push_back(vgg_layer_index(o.variant, name, "model.vae.perceptual.layers"));
  return idx;
}
}  // namespace

PerceptualLossImpl::PerceptualLossImpl(const PerceptualOptions& options)
    : options_(options),
      indices_(layer_indices(options)),
      vgg_(options.variant, *std::max_element(indices_.begin(), indices_.end())) {
  FT_USER_CHECK(!options_.weights.empty() || options_.allow_random_features,
                "perceptual loss needs VGG weights: set model.vae.perceptual.weights to a safetensors file with "
                "torchvision names (features.N.weight), or set model.vae.perceptual.allow_random_features: true "
                "(random features, for tests only)");
  register_module("vgg", vgg_);
  for (auto& p : vgg_->parameters()) p.set_requires_grad(false);
  if (!options_.weights.empty()) load_weights(options_.weights);
  train(false);
}

void PerceptualLossImpl::train(bool /*on*/) {
  // Frozen feature extractor: always eval (VGG features have no dropout/BN today, but a loss network must not
  // change behaviour with the trainer's mode switches).
  torch::nn::Module::train(false);
}

void PerceptualLossImpl::load_weights(const std::string& path) {
  LoadReport report;
  load_vgg_features(*vgg_, read_safetensors(path), &report, path);
}

torch::Tensor PerceptualLossImpl::normalise(const torch::Tensor& images) const {
  FT_USER_CHECK(images.dim() == 4 && (images.size(1) == 1 || images.size(1) == 3),
                "perceptual loss expects images (B, 1 or 3, H, W), got " << images.sizes());
  auto x = images.size(1) == 1 ? images.expand({-1, 3, -1, -1}) : images;
  // One affine per channel: [-1,1] or [0,1] -> [0,1] -> ImageNet mean/std.
  const double mean[3] = {0.485, 0.456, 0.406}, stdv[3] = {0.229, 0.224, 0.225};
  const bool signed_range = options_.input_range == PixelRange::kMinusOneToOne;
  std::vector<float> scale(3), shift(3);
  for (int c = 0; c < 3; ++c) {
    const double a = signed_range ? 0.5 : 1.0, b = signed_range ? 0.5 : 0.0;  // x01 = a x + b
    scale[c] = static_cast<float>(a / stdv[c]);
    shift[c] = static_cast<float>((b - mean[c]) / stdv[c]);
  }
  auto opts = torch::TensorOptions().dtype(torch::kFloat);
  auto s = torch::tensor(scale, opts).to(x.device(), x.scalar_type()).view({1, 3, 1, 1});
  auto t = torch::tensor(shift, opts).to(x.device(), x.scalar_type()).view({1, 3, 1, 1});
  return torch::addcmul(t, x, s);
}

std::vector<torch::Tensor> PerceptualLossImpl::features(const torch::Tensor& images) {
  return vgg_->forward(normalise(images), indices_);
}

torch::Tensor PerceptualLossImpl::forward(const torch::Tensor& input, const torch::Tensor& target) {
  FT_USER_CHECK(input.sizes() == target.sizes(),
                "perceptual loss: input " << input.sizes() << " and target " << target.sizes() << " differ in shape");
  std::vector<torch::Tensor> target_features;
  {
    torch::NoGradGuard no_grad;  // the target is data: no graph, no activations kept for backward
    target_features = features(target.detach());
  }
  auto input_features = features(input);
  torch::Tensor loss;
  for (size_t l = 0; l < input_features.size(); ++l) {
    const double w = options_.layer_weights.empty() ? 1.0 : options_.layer_weights[l];
    auto term = torch::mse_loss(input_features[l], target_features[l]) * w;
    loss = loss.defined() ? loss + term : term;
  }
  return loss;
}

}  // namespace facetrain
