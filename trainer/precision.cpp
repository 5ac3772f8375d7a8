// Mixed precision: autocast scopes and dynamic loss scaling (see precision.h).
#include "trainer/precision.h"

#include <ATen/autocast_mode.h>

#include <cmath>
#include <string>

#include "core/error.h"
#include "core/host_reads.h"
#include "core/log.h"
#include "core/torch_compat.h"
#include "trainer/multi_tensor.h"

namespace facetrain {

Precision parse_precision(const std::string& value, const torch::Device& device) {
  if (value == "fp32") return Precision::kFp32;
  if (value == "bf16") return Precision::kBf16;
  FT_USER_CHECK(value == "fp16", "distributed.precision must be fp32, bf16 or fp16 (got '" << value << "')");
  FT_USER_CHECK(device.is_cuda(), "distributed.precision fp16 needs a CUDA device (this rank runs on "
                                      << device.str() << "); use fp32, or bf16 to exercise autocast on a CPU");
  return Precision::kFp16;
}

std::string bf16_hint(const MatmulRates& rates) {
  const double gain = rates.bf16_gain();
  if (gain < kHintMinGain) return "";
  const std::string size = std::to_string(MatmulRates::kMatmulSize) + "^3";
  return "bf16 matmul " + fixed_decimals(gain, 1) + "x fp32 here (" + size +
         " at start-up: " + fixed_decimals(rates.bf16_gflops, 1) + " vs " + fixed_decimals(rates.fp32_gflops, 1) +
         " GFLOP/s): distributed.precision=bf16 may train faster; bench step measures a whole step (README: "
         "mixed precision)";
}

std::string precision_name(Precision precision) {
  switch (precision) {
    case Precision::kBf16: return "bf16";
    case Precision::kFp16: return "fp16";
    case Precision::kFp32: break;
  }
  return "fp32";
}

AutocastScope::AutocastScope(Precision precision, const torch::Device& device) {
  if (precision == Precision::kFp32) return;
  active_ = true;
  cuda_ = device.is_cuda();
  const c10::DeviceType type = cuda_ ? c10::DeviceType::CUDA : c10::DeviceType::CPU;
  previous_enabled_ = torch_compat::autocast_enabled(type);
  previous_dtype_ = torch_compat::autocast_dtype(type);
  torch_compat::set_autocast_dtype(type, precision == Precision::kBf16 ? torch::kBFloat16 : torch::kHalf);
  torch_compat::set_autocast_enabled(type, true);
  at::autocast::increment_nesting();
}

AutocastScope::~AutocastScope() {
  if (!active_) return;
  // Leaving the outermost region frees the cached low-precision copies of the weights (as torch.autocast).
  if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
  const c10::DeviceType type = cuda_ ? c10::DeviceType::CUDA : c10::DeviceType::CPU;
  torch_compat::set_autocast_enabled(type, previous_enabled_);
  torch_compat::set_autocast_dtype(type, previous_dtype_);
}

LossScaler::LossScaler(bool enabled, const Options& options)
    : enabled_(enabled), options_(options), scale_(enabled ? options.initial_scale : 1.0) {
  FT_CHECK(options.initial_scale > 0 && options.growth_factor > 1 && options.backoff_factor > 0 &&
               options.backoff_factor < 1 && options.growth_interval > 0,
           "bad loss-scaler options");
}

torch::Tensor LossScaler::scale_loss(const torch::Tensor& loss) const { return enabled_ ? loss * scale_ : loss; }

bool LossScaler::unscale_and_update(const std::vector<torch::Tensor>& parameters) {
  if (!enabled_) return true;
  std::vector<torch::Tensor> grads;
  for (const auto& p : parameters) {
    if (p.grad().defined()) grads.push_back(p.grad());
  }
  bool finite = true;
  if (!grads.empty()) {
    torch::NoGradGuard no_grad;
    if (amp_unscale_available(grads.front().device())) {
      // LibTorch's fused kernel (what GradScaler uses): one pass that unscales every gradient and flags a
      // non-finite one, instead of a kernel per gradient and a reduction (CUDA; a CPU kernel from 2.4).
      torch::Tensor found_inf = torch::zeros({1}, grads.front().options().dtype(torch::kFloat));
      const torch::Tensor inverse_scale = torch::full({1}, 1.0 / scale_, found_inf.options());
      at::_amp_foreach_non_finite_check_and_unscale_(grads, found_inf, inverse_scale);
      finite = read_to_host_scalar(found_inf) == 0.0;
    } else {
      // One reduction for the finiteness of all gradients: sum of |g| is inf/NaN iff some element is.
      torch::Tensor total = torch::zeros({}, grads.front().options().dtype(torch::kFloat));
      for (auto& g : grads) {
        g.mul_(1.0 / scale_);
        total += g.abs().sum().to(torch::kFloat);
      }
      finite = std::isfinite(read_to_host_scalar(total));
    }
  }
  if (finite) {
    if (++good_steps_ >= options_.growth_interval) {
      scale_ *= options_.growth_factor;
      good_steps_ = 0;
    }
  } else {
    scale_ *= options_.backoff_factor;
    good_steps_ = 0;
    ++skipped_;
  }
  return finite;
}

void LossScaler::save(torch::serialize::OutputArchive& archive, const std::string& key) const {
  if (!enabled_) return;
  archive.write(
      key, torch::tensor({scale_, static_cast<double>(good_steps_), static_cast<double>(skipped_)}, torch::kFloat64));
}

void LossScaler::load(torch::serialize::InputArchive& archive, const std::string& key) {
  if (!enabled_) return;
  torch::Tensor state;
  // A checkpoint of an fp32/bf16 run has no scaler: start from the initial scale.
  if (!archive.try_read(key, state)) return;
  FT_USER_CHECK(state.numel() == 3, "checkpoint entry '" << key << "' is not a loss-scaler state");
  scale_ = state[0].item<double>();
  good_steps_ = static_cast<int64_t>(state[1].item<double>());
  skipped_ = static_cast<int64_t>(state[2].item<double>());
}

}  // namespace facetrain
