// The optimizer half of a step as multi-tensor work against the per-tensor code it replaces: AdamW and Adam
// (fused and foreach) against torch::optim's over 5 steps with two groups (one without weight decay), changing
// learning rates, a parameter without a gradient in one step and a checkpoint round trip in the middle; the
// device-side clip against torch::nn::utils::clip_grad_norm_; the EMA against its old lerp loop.
// Tolerance: 1e-6 relative + 1e-7 absolute (float32; the fused kernel orders its arithmetic differently from
// torch::optim, the foreach ops are torch::optim's per-tensor ops and match it exactly on a CPU).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "core/config.pb.h"
#include "core/host_reads.h"
#include "trainer/ema.h"
#include "trainer/multi_tensor.h"
#include "trainer/multi_tensor_adam.h"
#include "trainer/optim.h"
#include "trainer/precision.h"
#include "trainer/trainable.h"

namespace facetrain {
namespace {

constexpr double kRtol = 1e-6, kAtol = 1e-7;

// Four parameters: two matrices (group 0, weight decay) and two vectors (group 1, none).
struct Params : torch::nn::Module {
  explicit Params(uint64_t seed) {
    torch::manual_seed(seed);
    w1 = register_parameter("w1", torch::randn({5, 3}));
    w2 = register_parameter("w2", torch::randn({4, 4}));
    b1 = register_parameter("b1", torch::randn({3}));
    b2 = register_parameter("b2", torch::randn({7}));
  }
  std::vector<std::vector<torch::Tensor>> groups() const { return {{w1, w2}, {b1, b2}}; }
  torch::Tensor w1, w2, b1, b2;
};

template <typename Options>
std::vector<torch::optim::OptimizerParamGroup> groups_of(const Params& p, const Options& defaults) {
  std::vector<torch::optim::OptimizerParamGroup> out;
  out.emplace_back(p.groups()[0], std::make_unique<Options>(defaults));
  auto no_decay = std::make_unique<Options>(defaults);
  no_decay->weight_decay(0);
  out.emplace_back(p.groups()[1], std::move(no_decay));
  return out;
}

// Every parameter of `a` and `b` within tolerance, and each state's step count equal; "" when so.
template <typename State>
std::string difference(const Params& a, torch::optim::Optimizer& oa, const Params& b, torch::optim::Optimizer& ob) {
  const auto pa = a.parameters(), pb = b.parameters();
  for (size_t i = 0; i < pa.size(); ++i) {
    if (!torch::allclose(pa[i], pb[i], kRtol, kAtol)) {
      return "parameter " + std::to_string(i) + " differs by " +
             std::to_string((pa[i] - pb[i]).abs().max().item<double>());
    }
    auto fa = oa.state().find(optimizer_state_key(oa.state(), pa[i]));
    auto fb = ob.state().find(optimizer_state_key(ob.state(), pb[i]));
    if ((fa == oa.state().end()) != (fb == ob.state().end())) return "state of parameter " + std::to_string(i);
    if (fa == oa.state().end()) continue;
    auto& sa = static_cast<State&>(*fa->second);
    auto& sb = static_cast<State&>(*fb->second);
    if (sa.step() != sb.step()) return "step count of parameter " + std::to_string(i);
    if (!torch::allclose(sa.exp_avg(), sb.exp_avg(), kRtol, kAtol) ||
        !torch::allclose(sa.exp_avg_sq(), sb.exp_avg_sq(), kRtol, kAtol))
      return "moments of parameter " + std::to_string(i);
  }
  return "";
}

// Ours (Optimizer with `kernel`) and Reference (torch::optim's) from the same start and gradients.
template <typename Ours, typename Reference, typename Options, typename State>
void expect_same_steps(AdamKernel kernel) {
  const auto defaults = Options(0.05).betas({0.8, 0.95}).weight_decay(0.1).eps(1e-6);
  Params ours(7), reference(7);
  auto ours_optimizer = std::make_unique<Ours>(groups_of(ours, defaults), defaults, kernel);
  Reference reference_optimizer(groups_of(reference, defaults), defaults);
  LossScaler scaler(false);
  torch::manual_seed(11);
  for (int step = 1; step <= 5; ++step) {
    SCOPED_TRACE("step " + std::to_string(step));
    // Learning rates as a schedule sets them: all groups alike, or scaled per group (fine-tuning).
    if (step % 2 == 1) {
      set_learning_rate(*ours_optimizer, 0.05 / step);
      set_learning_rate(reference_optimizer, 0.05 / step);
    } else {
      set_learning_rates(*ours_optimizer, 0.03, {1.0, 0.25 * step});
      set_learning_rates(reference_optimizer, 0.03, {1.0, 0.25 * step});
    }
    const auto po = ours.parameters(), pr = reference.parameters();
    for (size_t i = 0; i < po.size(); ++i) {
      // Step 2: w2 unused by every rank (gradient_sync leaves it undefined); step 3: b1 likewise.
      if ((step == 2 && i == 1) || (step == 3 && i == 2)) {
        po[i].mutable_grad() = torch::Tensor();
        pr[i].mutable_grad() = torch::Tensor();
        continue;
      }
      const torch::Tensor g = torch::randn(po[i].sizes());
      po[i].mutable_grad() = g.clone();
      pr[i].mutable_grad() = g.clone();
    }
    ours_optimizer->step();
    reference_optimizer.step();
    ASSERT_EQ(difference<State>(ours, *ours_optimizer, reference, reference_optimizer), "");

    if (step == 3) {  // resume: save through the checkpoint code, load into a fresh optimizer, go on with it
      torch::serialize::OutputArchive out;
      save_training_state(out, "model", "", ours, *ours_optimizer, scaler);
      std::ostringstream bytes;
      out.save_to(bytes);
      auto fresh = std::make_unique<Ours>(groups_of(ours, defaults), defaults, kernel);
      torch::serialize::InputArchive in;
      std::istringstream in_bytes(bytes.str());
      in.load_from(in_bytes);
      load_training_state(in, "model", "", ours, *fresh, scaler);
      ours_optimizer = std::move(fresh);
      ASSERT_EQ(difference<State>(ours, *ours_optimizer, reference, reference_optimizer), "") << "after loading";
      // The archive is torch::optim's state layout too: a torch::optim optimizer loads it to the same state.
      Reference plain(groups_of(ours, defaults), defaults);
      torch::serialize::InputArchive again;
      std::istringstream again_bytes(bytes.str());
      again.load_from(again_bytes);
      load_training_state(again, "model", "", ours, plain, scaler);
      ASSERT_EQ(difference<State>(ours, plain, reference, reference_optimizer), "") << "loaded by torch::optim";
    }
  }
}

std::vector<AdamKernel> kernels_here() {
  std::vector<AdamKernel> out{AdamKernel::kForeach};
  if (fused_adam_available(torch::kCPU)) out.push_back(AdamKernel::kFused);
  return out;
}

TEST(MultiTensorAdam, AdamWStepsAsTorchOptim) {
  for (AdamKernel kernel : kernels_here()) {
    SCOPED_TRACE(adam_kernel_description(kernel, true));
    expect_same_steps<MultiTensorAdamW, torch::optim::AdamW, torch::optim::AdamWOptions, torch::optim::AdamWParamState>(
        kernel);
  }
}

TEST(MultiTensorAdam, AdamStepsAsTorchOptim) {
  for (AdamKernel kernel : kernels_here()) {
    SCOPED_TRACE(adam_kernel_description(kernel, false));
    expect_same_steps<MultiTensorAdam, torch::optim::Adam, torch::optim::AdamOptions, torch::optim::AdamParamState>(
        kernel);
  }
}

TEST(MultiTensorAdam, MakeOptimizerMakesThemAndTheyReadNoDeviceValue) {
  Params p(3);
  proto::OptimizerConfig config;
  config.set_kind("adamw");
  auto adamw = make_optimizer(config, p.groups(), {true, false});
  EXPECT_NE(dynamic_cast<MultiTensorAdamW*>(adamw.get()), nullptr);
  config.set_kind("adam");
  EXPECT_NE(dynamic_cast<MultiTensorAdam*>(make_optimizer(config, p.groups()).get()), nullptr);
  for (auto& t : p.parameters()) t.mutable_grad() = torch::ones_like(t);
  const int64_t reads = host_read_count();
  clip_grad_norm_on_device(p.parameters(), 0.5);
  adamw->step();
  EXPECT_EQ(host_read_count(), reads);
}

// Gradients of four tensors (one without a gradient) and a copy, for the clip against clip_grad_norm_.
struct Grads {
  explicit Grads(float scale) {
    torch::manual_seed(5);
    for (int64_t n : {6, 3, 10, 4}) ours.push_back(torch::randn({n}).requires_grad_(true));
    for (const auto& t : ours) reference.push_back(t.detach().clone().requires_grad_(true));
    for (size_t i = 0; i < ours.size(); ++i) {
      if (i == 2) continue;
      const torch::Tensor g = torch::randn(ours[i].sizes()) * scale;
      ours[i].mutable_grad() = g.clone();
      reference[i].mutable_grad() = g.clone();
    }
  }
  std::vector<torch::Tensor> ours, reference;
};

void expect_same_grads(const Grads& g) {
  for (size_t i = 0; i < g.ours.size(); ++i) {
    ASSERT_EQ(g.ours[i].grad().defined(), g.reference[i].grad().defined()) << "tensor " << i;
    if (g.ours[i].grad().defined()) {
      EXPECT_TRUE(torch::allclose(g.ours[i].grad(), g.reference[i].grad(), kRtol, kAtol)) << "tensor " << i;
    }
  }
}

TEST(ClipGradNormOnDevice, EqualsClipGradNorm) {
  for (double max_norm : {0.5, 1e6}) {  // clipped (the norm is about 4); not clipped (factor clamped to 1)
    SCOPED_TRACE("max_norm " + std::to_string(max_norm));
    Grads g(1.0f);
    const torch::Tensor norm = clip_grad_norm_on_device(g.ours, max_norm);
    const double expected = torch::nn::utils::clip_grad_norm_(g.reference, max_norm);
    EXPECT_EQ(norm.dim(), 0);
    EXPECT_NEAR(norm.item<double>(), expected, kRtol * expected);
    EXPECT_GT(expected, 1.0);
    expect_same_grads(g);
  }
}

TEST(ClipGradNormOnDevice, MeasuresWithoutClippingAtZeroAndIsZeroWithoutGradients) {
  Grads g(100.0f);
  const std::vector<torch::Tensor> before{g.ours[0].grad().clone(), g.ours[1].grad().clone()};
  const torch::Tensor norm = clip_grad_norm_on_device(g.ours, 0);
  const double expected = torch::nn::utils::clip_grad_norm_(g.reference, 1e30);
  EXPECT_NEAR(norm.item<double>(), expected, kRtol * expected);
  EXPECT_TRUE(torch::equal(g.ours[0].grad(), before[0]));
  EXPECT_TRUE(torch::equal(g.ours[1].grad(), before[1]));
  const std::vector<torch::Tensor> none{torch::zeros({3}, torch::requires_grad())};
  EXPECT_EQ(clip_grad_norm_on_device(none, 1.0).item<double>(), 0.0);
}

TEST(WeightEmaMultiTensor, UpdateEqualsTheLerpLoop) {
  torch::manual_seed(9);
  torch::nn::Sequential model(torch::nn::Linear(6, 5), torch::nn::LayerNorm(torch::nn::LayerNormOptions({5})),
                              torch::nn::Linear(5, 2));
  proto::EmaConfig config;
  config.set_decay(0.99f);
  config.set_warmup_power(0.75f);
  WeightEma ema(config, *model);
  std::vector<torch::Tensor> expected;
  for (const auto& p : model->parameters()) expected.push_back(p.detach().clone());
  for (int64_t t = 0; t < 4; ++t) {
    torch::NoGradGuard no_grad;
    for (auto& p : model->parameters()) p.add_(torch::randn(p.sizes()));
    ema.update(t);
    // The update before multi-tensor ops: one lerp_ per tensor.
    const auto params = model->parameters();
    for (size_t i = 0; i < expected.size(); ++i) expected[i].lerp_(params[i], 1.0 - ema.decay_at(t));
  }
  ema.swap();
  const auto shadow = model->parameters();
  for (size_t i = 0; i < expected.size(); ++i) {
    EXPECT_TRUE(torch::allclose(shadow[i], expected[i], kRtol, kAtol)) << "tensor " << i;
  }
}

}  // namespace
}  // namespace facetrain
