// WeightEma (see ema.h).
#include "trainer/ema.h"

#include <cmath>
#include <map>

#include "core/error.h"
#include "models/checkpoint.h"
#include "trainer/multi_tensor.h"

namespace facetrain {
namespace {

bool read_like_module(torch::serialize::InputArchive& archive, const torch::nn::Module& module,
                      const std::map<const void*, torch::Tensor>& shadow_of) {
  for (const auto& p : module.named_parameters(/*recurse=*/false)) {
    torch::Tensor t;
    if (!archive.try_read(p.key(), t)) return false;
    FT_USER_CHECK(t.sizes() == p.value().sizes(),
                  "checkpoint: EMA tensor " << p.key() << " is " << t.sizes() << ", the model's " << p.value().sizes());
    torch::NoGradGuard no_grad;
    shadow_of.at(p.value().unsafeGetTensorImpl()).copy_(t);
  }
  for (const auto& child : module.named_children()) {
    torch::serialize::InputArchive sub;
    if (!archive.try_read(child.key(), sub) || !read_like_module(sub, *child.value(), shadow_of)) return false;
  }
  return true;
}

}  // namespace

WeightEma::WeightEma(const proto::EmaConfig& config, torch::nn::Module& module)
    : module_(module), decay_(config.decay()), warmup_power_(config.warmup_power()) {
  FT_USER_CHECK(decay_ > 0 && decay_ < 1, "ema.decay: " << decay_ << " is not in (0, 1) (0 turns EMA off)");
  FT_USER_CHECK(warmup_power_ >= 0, "ema.warmup_power: " << warmup_power_ << " is negative");
  torch::NoGradGuard no_grad;
  for (const auto& p : module.named_parameters(/*recurse=*/true)) {
    parameters_.push_back(p.value());
    shadow_.push_back(p.value().detach().clone());
  }
}

double WeightEma::decay_at(int64_t updates) const {
  if (warmup_power_ <= 0) return decay_;
  return std::min(decay_, 1.0 - std::pow(1.0 + static_cast<double>(updates), -warmup_power_));
}

void WeightEma::update(int64_t updates) {
  const double d = decay_at(updates);
  // shadow += (1 - d) * (weight - shadow): lerp, one multi-tensor kernel on a GPU (trainer/multi_tensor.h).
  lerp_all_(shadow_, parameters_, 1.0 - d);
}

void WeightEma::reset() {
  torch::NoGradGuard no_grad;
  for (size_t i = 0; i < shadow_.size(); ++i) shadow_[i].copy_(parameters_[i].detach());
}

void WeightEma::swap() {
  torch::NoGradGuard no_grad;
  for (size_t i = 0; i < shadow_.size(); ++i) {
    torch::Tensor raw = parameters_[i].detach().clone();
    parameters_[i].detach().copy_(shadow_[i]);
    shadow_[i].copy_(raw);
  }
}

void WeightEma::save(torch::serialize::OutputArchive& archive, const std::string& key) const {
  std::map<const void*, torch::Tensor> shadow_of;
  for (size_t i = 0; i < shadow_.size(); ++i) shadow_of[parameters_[i].unsafeGetTensorImpl()] = shadow_[i];
  torch::serialize::OutputArchive sub;
  save_module_copy(sub, module_, [&](const torch::Tensor& p) { return shadow_of.at(p.unsafeGetTensorImpl()); });
  archive.write(weights_key(key, ModelWeights::kEma), sub);
}

bool WeightEma::load(torch::serialize::InputArchive& archive, const std::string& key) {
  torch::serialize::InputArchive sub;
  if (!archive.try_read(weights_key(key, ModelWeights::kEma), sub)) return false;
  std::map<const void*, torch::Tensor> shadow_of;
  for (size_t i = 0; i < shadow_.size(); ++i) shadow_of[parameters_[i].unsafeGetTensorImpl()] = shadow_[i];
  FT_USER_CHECK(read_like_module(sub, module_, shadow_of),
                "checkpoint: '" << weights_key(key, ModelWeights::kEma) << "' does not fit the model");
  return true;
}

void WeightEma::check_identical(Communicator& comm) const {
  double sum = 0;
  for (const auto& s : shadow_) sum += s.to(torch::kCPU, torch::kFloat64).sum().item<double>();
  const torch::Tensor all =
      comm.all_gather(torch::tensor({sum}, torch::kFloat64).reshape({1, 1}), "allgather of the EMA weights' checksum");
  for (int64_t r = 1; r < all.size(0); ++r) {
    FT_CHECK(all[r][0].item<double>() == all[0][0].item<double>(),
             "EMA weights differ between rank 0 and rank " << r << " (checksums " << all[0][0].item<double>() << ", "
                                                           << all[r][0].item<double>() << ")");
  }
}

}  // namespace facetrain
