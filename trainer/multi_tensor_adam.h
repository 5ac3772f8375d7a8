// AdamW and Adam (Loshchilov & Hutter, "Decoupled Weight Decay Regularization", ICLR 2019; Kingma & Ba,
// "Adam", ICLR 2015) stepped a whole parameter group at a time: LibTorch's fused kernel where the build has
// it, else its `_foreach_*` ops, instead of torch::optim's nine kernels per parameter. Same update, options,
// parameter groups and state (torch::optim::AdamWParamState / AdamParamState) as the torch::optim classes
// they derive from, so checkpoints, set_learning_rate(s) and dynamic_casts to torch::optim::AdamW/Adam stay
// as they are. No host read of a device value.
#pragma once

#include <torch/torch.h>

#include <optional>
#include <sstream>
#include <string>
#include <type_traits>
#include <vector>

namespace facetrain {

enum class AdamKernel {
  kFused,    // at::_fused_adamw_ / at::_fused_adam_: one pass over each tensor (LibTorch >= 2.4, CPU and CUDA)
  kForeach,  // at::_foreach_* ops: nine multi-tensor kernels per group on CUDA, per-tensor loops on a CPU
};

// The kernel a step runs for tensors on `device`: fused where this LibTorch has it (multi_tensor.h), else
// foreach.
AdamKernel adam_kernel_for(const torch::Device& device);
// "fused (at::_fused_adamw_)", "foreach (at::_foreach_* ops)": for the run log.
std::string adam_kernel_description(AdamKernel kernel, bool decoupled_weight_decay);

// The optimizers, one template over torch::optim's AdamW and Adam (Options and State are the base's own).
// `kernel` forces one (tests compare them; forcing kFused where the build lacks it throws at the first step);
// by default adam_kernel_for the parameters' device, per step. Groups with amsgrad (which make_optimizer never
// sets) step through torch::optim's own code. The first step logs the kernel it runs (core/log.h, rank 0):
// "optimizer: AdamW, fused (at::_fused_adamw_) on cuda:0".
template <typename Base, typename Options, typename State>
class MultiTensorAdamOf : public Base {
 public:
  MultiTensorAdamOf(std::vector<torch::optim::OptimizerParamGroup> groups, Options defaults,
                    std::optional<AdamKernel> kernel = std::nullopt)
      : Base(std::move(groups), defaults), kernel_(kernel) {}
  torch::Tensor step(torch::optim::Optimizer::LossClosure closure = nullptr) override;

 private:
  std::optional<AdamKernel> kernel_;
  bool logged_ = false;  // the run log's "optimizer: ..." line, at the first step
};

using MultiTensorAdamW =
    MultiTensorAdamOf<torch::optim::AdamW, torch::optim::AdamWOptions, torch::optim::AdamWParamState>;
using MultiTensorAdam = MultiTensorAdamOf<torch::optim::Adam, torch::optim::AdamOptions, torch::optim::AdamParamState>;

// The key of a parameter's state in an optimizer's state map: its TensorImpl's address, as a string in
// LibTorch 1.x (what c10::guts::to_string writes for the pointer) and the pointer itself in 2.x (the map's
// key type says which).
template <typename StateMap>
typename StateMap::key_type optimizer_state_key(const StateMap&, const torch::Tensor& p) {
  if constexpr (std::is_same_v<typename StateMap::key_type, std::string>) {
    std::ostringstream key;
    key << static_cast<const void*>(p.unsafeGetTensorImpl());
    return key.str();
  } else {
    return p.unsafeGetTensorImpl();
  }
}

}  // namespace facetrain
