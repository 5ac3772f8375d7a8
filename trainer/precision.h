// Mixed precision (distributed.precision): autocast regions for forward passes and dynamic loss scaling for
// fp16. Weights, gradients, gradient sync and optimizer state stay float32 in every mode; only the forward
// arithmetic of autocast-eligible ops (matmul, conv, linear) drops to bf16/fp16. The ViT's attention softmax
// is float32 under any mode (models/vit.cpp).
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <vector>

#include "runtime/blas_kernels.h"

namespace facetrain {

enum class Precision { kFp32, kBf16, kFp16 };

// "fp32" | "bf16" | "fp16" on `device`. fp16 needs CUDA (LibTorch 1.13 has no fp16 autocast on CPU); bf16
// also runs on CPU, where whether it is faster depends on the CPU and the LibTorch build, not on a flag:
// measured on the bench ViT step (docs/results.md), 2.1x faster than fp32 on a Xeon with AMX, 0.70x (slower)
// on a Xeon with AVX512-BF16 and no AMX, and emulated (far slower) on an AMD EPYC with AVX2 only.
// Throws UserError naming the field otherwise.
Precision parse_precision(const std::string& value, const torch::Device& device);
std::string precision_name(Precision precision);

// The hint for an fp32 run on a CPU, from this rank's start-up matmuls (runtime/blas_kernels.h), with its
// numbers: "bf16 matmul 1.9x fp32 here (256^3 at start-up: 210.0 vs 110.0 GFLOP/s): ...". Empty unless bf16
// measured at least kHintMinGain x fp32 at the same size.
std::string bf16_hint(const MatmulRates& rates);

// Autocast for the scope's lifetime (as torch.autocast): CUDA autocast on CUDA devices, CPU autocast for bf16
// on CPU; nothing for fp32. Cast weights are cached within the outermost scope and dropped when it ends.
class AutocastScope {
 public:
  AutocastScope(Precision precision, const torch::Device& device);
  ~AutocastScope();
  AutocastScope(const AutocastScope&) = delete;
  AutocastScope& operator=(const AutocastScope&) = delete;

 private:
  bool active_ = false, cuda_ = false, previous_enabled_ = false;
  torch::ScalarType previous_dtype_ = torch::kFloat;
};

// Dynamic loss scaling for fp16 (the scheme of torch.cuda.amp.GradScaler): the loss is multiplied by
// `scale` before backward so small fp16 gradients do not flush to zero; after the gradient sync the
// gradients are divided by it again. A step whose gradients hold inf/NaN is skipped and the scale halved;
// after `growth_interval` good steps in a row it doubles. Gradients are averaged over ranks before the
// check, so an overflow on one rank is an overflow on all: every rank skips the same steps with no extra
// communication. Disabled (fp32, bf16): scale 1, nothing checked, never skips.
class LossScaler {
 public:
  struct Options {
    double initial_scale = 65536.0;  // 2^16, as GradScaler
    double growth_factor = 2.0;
    double backoff_factor = 0.5;
    int64_t growth_interval = 2000;
  };
  explicit LossScaler(bool enabled) : LossScaler(enabled, Options{}) {}
  LossScaler(bool enabled, const Options& options);

  bool enabled() const { return enabled_; }
  double scale() const { return scale_; }
  int64_t skipped_steps() const { return skipped_; }

  // loss * scale (the loss itself when disabled).
  torch::Tensor scale_loss(const torch::Tensor& loss) const;
  // After the gradient sync: gradients /= scale in place. Returns false when any gradient is not finite
  // (the caller skips the optimizer step), then updates the scale. Always true when disabled.
  bool unscale_and_update(const std::vector<torch::Tensor>& parameters);

  // Checkpointed so a resumed fp16 run continues with the same scale.
  void save(torch::serialize::OutputArchive& archive, const std::string& key) const;
  void load(torch::serialize::InputArchive& archive, const std::string& key);

 private:
  bool enabled_;
  Options options_;
  double scale_;
  int64_t good_steps_ = 0, skipped_ = 0;
};

}  // namespace facetrain
