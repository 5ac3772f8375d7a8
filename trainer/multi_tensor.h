// The optimizer half of a training step as multi-tensor device work: the global gradient norm and its clip,
// and the weight EMA's lerp, each one kernel per list on a GPU (LibTorch's `_foreach_*` ops) where the build
// has the op, and never a read of a device value on the host (core/host_reads.h: the step makes none).
// Which LibTorch has which op is decided here, by version, beside what each call falls back to.
#pragma once

#include <torch/torch.h>

#include <vector>

#include "core/torch_compat.h"

// The LibTorch versions of the ops used here and in multi_tensor_adam.cpp (checked against Debian's 1.13
// headers and the 2.x wheel's): `_foreach_mul_(list, Tensor)` and `_foreach_lerp_` from 2.1; `_fused_adamw_`
// and `_fused_adam_` with CPU kernels, and a CPU kernel of `_amp_foreach_non_finite_check_and_unscale_`, from
// 2.4. (`_foreach_norm`, `_foreach_mul_`/`add_`/`addcmul_`/`addcdiv_`/`div_`/`sqrt` with scalars: all of them.)
#define FACETRAIN_HAS_FOREACH_TENSOR_OPS FACETRAIN_TORCH_AT_LEAST(2, 1)
#define FACETRAIN_HAS_FUSED_ADAM FACETRAIN_TORCH_AT_LEAST(2, 4)

namespace facetrain {

// The global L2 norm of the parameters' gradients (those with a defined .grad) as a float32 0-dim tensor on
// their device, computed before clipping; when max_norm > 0 the gradients are then multiplied in place by
// clamp(max_norm / (norm + 1e-6), max=1), on the device, as torch::nn::utils::clip_grad_norm_ (and
// torch.nn.utils.clip_grad_norm_ since PyTorch 2.0) do; max_norm <= 0 only measures. A zero tensor when no
// parameter has a gradient. No host read either way.
torch::Tensor clip_grad_norm_on_device(const std::vector<torch::Tensor>& parameters, double max_norm);

// self[i] += weight * (end[i] - self[i]) for every i (Tensor::lerp_), with no autograd: one `_foreach_lerp_`
// where the build has it (LibTorch >= 2.1), else one lerp_ per tensor (1.13 has no foreach lerp). Same length.
void lerp_all_(const std::vector<torch::Tensor>& self, const std::vector<torch::Tensor>& end, double weight);

// Whether this build has LibTorch's fused AdamW/Adam kernels (`at::_fused_adamw_`, `at::_fused_adam_`) for
// tensors on `device`: LibTorch >= 2.4 on CPU and CUDA; never in 1.13 (whose `_fused_adam_` is CUDA-only
// Adam and not built into Debian's CPU LibTorch).
bool fused_adam_available(const torch::Device& device);

// Whether this build has `at::_amp_foreach_non_finite_check_and_unscale_` for tensors on `device`: CUDA
// always, CPU from LibTorch 2.4 (1.13 has no CPU kernel).
bool amp_unscale_available(const torch::Device& device);

}  // namespace facetrain
