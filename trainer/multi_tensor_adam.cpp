// MultiTensorAdamW and MultiTensorAdam (see multi_tensor_adam.h).
#include "trainer/multi_tensor_adam.h"

#include <cmath>
#include <mutex>
#include <set>
#include <tuple>
#include <type_traits>
#include <utility>

#include "core/log.h"
#include "trainer/multi_tensor.h"

namespace facetrain {

AdamKernel adam_kernel_for(const torch::Device& device) {
  return fused_adam_available(device) ? AdamKernel::kFused : AdamKernel::kForeach;
}

std::string adam_kernel_description(AdamKernel kernel, bool decoupled_weight_decay) {
  if (kernel == AdamKernel::kFused) {
    return decoupled_weight_decay ? "fused (at::_fused_adamw_)" : "fused (at::_fused_adam_)";
  }
  return "foreach (at::_foreach_* ops)";
}

namespace {

// The parameters of one group that step together: same step count (a parameter whose gradient was undefined
// in some step has fewer), device and dtype (what one multi-tensor call takes).
struct Bucket {
  int64_t step;
  torch::Device device;
  torch::ScalarType dtype;
  std::vector<torch::Tensor> params, grads, exp_avgs, exp_avg_sqs;
};

struct Hyper {
  double lr, beta1, beta2, eps, weight_decay;
  bool decoupled;  // AdamW's p *= 1 - lr * wd; else Adam's L2 term g += wd * p
};

void fused_step(const Bucket& b, const Hyper& h) {
#if FACETRAIN_HAS_FUSED_ADAM
  // The kernels read each parameter's step from a float32 tensor on its device (PyTorch keeps them there for
  // fused Adam); one filled tensor serves the whole bucket, and filling it is a kernel, not a copy from the host.
  const torch::Tensor step =
      torch::full({}, static_cast<double>(b.step), torch::TensorOptions(b.device).dtype(torch::kFloat));
  const std::vector<torch::Tensor> steps(b.params.size(), step);
  if (h.decoupled) {
    at::_fused_adamw_(b.params, b.grads, b.exp_avgs, b.exp_avg_sqs, /*max_exp_avg_sqs=*/{}, steps, h.lr, h.beta1,
                      h.beta2, h.weight_decay, h.eps, /*amsgrad=*/false, /*maximize=*/false);
  } else {
    at::_fused_adam_(b.params, b.grads, b.exp_avgs, b.exp_avg_sqs, /*max_exp_avg_sqs=*/{}, steps, h.lr, h.beta1,
                     h.beta2, h.weight_decay, h.eps, /*amsgrad=*/false, /*maximize=*/false);
  }
#else
  (void)b;
  (void)h;
  TORCH_CHECK(false, "this LibTorch (", TORCH_VERSION, ") has no fused Adam kernel; use AdamKernel::kForeach");
#endif
}

// torch::optim::AdamW::step's (and Adam's) arithmetic, op for op, over the bucket's lists: on a CPU each
// foreach op is the same per-tensor op in the same order.
void foreach_step(const Bucket& b, const Hyper& h) {
  std::vector<torch::Tensor> grads = b.grads;
  if (h.weight_decay != 0) {
    if (h.decoupled) {
      at::_foreach_mul_(b.params, 1 - h.lr * h.weight_decay);
    } else {
      grads = at::_foreach_add(b.grads, b.params, h.weight_decay);
    }
  }
  at::_foreach_mul_(b.exp_avgs, h.beta1);
  at::_foreach_add_(b.exp_avgs, grads, 1 - h.beta1);
  at::_foreach_mul_(b.exp_avg_sqs, h.beta2);
  at::_foreach_addcmul_(b.exp_avg_sqs, grads, grads, 1 - h.beta2);
  const double bias_correction1 = 1 - std::pow(h.beta1, static_cast<double>(b.step));
  const double bias_correction2 = 1 - std::pow(h.beta2, static_cast<double>(b.step));
  std::vector<torch::Tensor> denom = at::_foreach_sqrt(b.exp_avg_sqs);
  at::_foreach_div_(denom, std::sqrt(bias_correction2));
  at::_foreach_add_(denom, h.eps);
  at::_foreach_addcdiv_(b.params, b.exp_avgs, denom, -h.lr / bias_correction1);
}

// "optimizer: AdamW, fused (at::_fused_adamw_) on cuda:0" in the run log, at an optimizer's first step (the
// first time its kernel is known to run; before that a configuration error may still end the run, with no
// line before it), once per process and line: a GAN's two optimizers say it once.
void log_kernel(const char* name, AdamKernel kernel, bool decoupled, const torch::Device& device) {
  const std::string line =
      std::string("optimizer: ") + name + ", " + adam_kernel_description(kernel, decoupled) + " on " + device.str();
  static std::mutex mutex;
  static std::set<std::string> said;
  const std::lock_guard<std::mutex> lock(mutex);
  if (said.insert(line).second) log(line);
}

// One step of every group of `optimizer` (State: AdamWParamState or AdamParamState; Options likewise).
template <typename State, typename Options, typename Optimizer>
void step_groups(Optimizer& optimizer, const char* name, bool decoupled, const std::optional<AdamKernel>& forced,
                 bool& logged) {
  auto& states = optimizer.state();
  for (auto& group : optimizer.param_groups()) {
    const auto& o = static_cast<const Options&>(group.options());
    const Hyper h{o.lr(), std::get<0>(o.betas()), std::get<1>(o.betas()), o.eps(), o.weight_decay(), decoupled};
    std::vector<Bucket> buckets;
    for (const auto& p : group.params()) {
      if (!p.grad().defined()) continue;  // unused by every rank this step (comm/gradient_sync.h)
      TORCH_CHECK(!p.grad().is_sparse(), "Adam does not support sparse gradients");
      const auto key = optimizer_state_key(states, p);
      auto& slot = states[key];  // (the reference is used before the map grows again)
      if (slot == nullptr) {     // as torch::optim: zero moments, step 0, on the first step with a gradient
        auto made = std::make_unique<State>();
        made->step(0);
        made->exp_avg(torch::zeros_like(p, torch::MemoryFormat::Preserve));
        made->exp_avg_sq(torch::zeros_like(p, torch::MemoryFormat::Preserve));
        slot = std::move(made);
      }
      auto& state = static_cast<State&>(*slot);
      state.step(state.step() + 1);
      Bucket* bucket = nullptr;
      for (auto& b : buckets) {
        if (b.step == state.step() && b.device == p.device() && b.dtype == p.scalar_type()) bucket = &b;
      }
      if (bucket == nullptr)
        bucket = &buckets.emplace_back(Bucket{state.step(), p.device(), p.scalar_type(), {}, {}, {}, {}});
      bucket->params.push_back(p);
      bucket->grads.push_back(p.grad());
      bucket->exp_avgs.push_back(state.exp_avg());
      bucket->exp_avg_sqs.push_back(state.exp_avg_sq());
    }
    for (const auto& b : buckets) {
      const AdamKernel kernel = forced ? *forced : adam_kernel_for(b.device);
      if (!logged) log_kernel(name, kernel, decoupled, b.device);
      logged = true;
      if (kernel == AdamKernel::kFused) {
        fused_step(b, h);
      } else {
        foreach_step(b, h);
      }
    }
  }
}

}  // namespace

template <typename Base, typename Options, typename State>
torch::Tensor MultiTensorAdamOf<Base, Options, State>::step(torch::optim::Optimizer::LossClosure closure) {
  for (auto& group : this->param_groups()) {
    if (static_cast<const Options&>(group.options()).amsgrad()) return Base::step(closure);
  }
  torch::NoGradGuard no_grad;
  torch::Tensor loss;
  if (closure != nullptr) {
    at::AutoGradMode enable_grad(true);
    loss = closure();
  }
  constexpr bool decoupled = std::is_same_v<Base, torch::optim::AdamW>;  // AdamW's weight decay
  step_groups<State, Options>(*this, decoupled ? "AdamW" : "Adam", decoupled, kernel_, logged_);
  return loss;
}

template class MultiTensorAdamOf<torch::optim::AdamW, torch::optim::AdamWOptions, torch::optim::AdamWParamState>;
template class MultiTensorAdamOf<torch::optim::Adam, torch::optim::AdamOptions, torch::optim::AdamParamState>;

}  // namespace facetrain
