// Multi-tensor gradient clipping and lerp, and which fused kernels this LibTorch has (see multi_tensor.h).
#include "trainer/multi_tensor.h"

#include <ATen/ops/_foreach_norm.h>

namespace facetrain {

torch::Tensor clip_grad_norm_on_device(const std::vector<torch::Tensor>& parameters, double max_norm) {
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> grads;
  for (const auto& p : parameters) {
    if (p.grad().defined()) grads.push_back(p.grad());
  }
  if (grads.empty()) {
    return torch::zeros({}, parameters.empty() ? torch::TensorOptions(torch::kFloat)
                                               : parameters.front().options().dtype(torch::kFloat));
  }
  // One norm per gradient (one multi-tensor kernel on CUDA, per-tensor norms on a CPU), then the norm of the
  // norms: what clip_grad_norm_ computes, in the same order.
  const std::vector<torch::Tensor> norms = at::_foreach_norm(grads, 2);
  const torch::Tensor total = norms.size() == 1 ? norms.front() : torch::stack(norms).norm(2);
  if (max_norm > 0) {
    // Always multiplied, by at most 1: branching on the norm would read it on the host.
    const torch::Tensor coef = torch::clamp(max_norm / (total + 1e-6), c10::nullopt, 1.0);
#if FACETRAIN_HAS_FOREACH_TENSOR_OPS
    at::_foreach_mul_(grads, coef);
#else
    for (auto& g : grads) g.mul_(coef);
#endif
  }
  return total;
}

void lerp_all_(const std::vector<torch::Tensor>& self, const std::vector<torch::Tensor>& end, double weight) {
  TORCH_CHECK(self.size() == end.size(), "lerp_all_: ", self.size(), " tensors against ", end.size());
  torch::NoGradGuard no_grad;
#if FACETRAIN_HAS_FOREACH_TENSOR_OPS
  at::_foreach_lerp_(self, end, weight);
#else
  for (size_t i = 0; i < self.size(); ++i) self[i].lerp_(end[i], weight);
#endif
}

bool fused_adam_available(const torch::Device& device) {
  return FACETRAIN_HAS_FUSED_ADAM && (device.is_cpu() || device.is_cuda());
}

bool amp_unscale_available(const torch::Device& device) {
  return device.is_cuda() || (FACETRAIN_HAS_FUSED_ADAM && device.is_cpu());
}

}  // namespace facetrain
