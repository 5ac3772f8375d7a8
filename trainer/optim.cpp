// Optimizer construction and the shared synced step (see optim.h).
#include "trainer/optim.h"

#include <functional>
#include <limits>

#include "core/error.h"
#include "models/checkpoint.h"

#include "core/stopwatch.h"

namespace facetrain {

std::unique_ptr<torch::optim::Optimizer> make_optimizer(const proto::OptimizerConfig& c,
                                                        std::vector<torch::Tensor> parameters) {
  return make_optimizer(c, std::vector<std::vector<torch::Tensor>>{std::move(parameters)});
}

std::unique_ptr<torch::optim::Optimizer> make_optimizer(const proto::OptimizerConfig& c,
                                                        const std::vector<std::vector<torch::Tensor>>& groups) {
  std::vector<torch::optim::OptimizerParamGroup> param_groups;
  for (const auto& g : groups) param_groups.emplace_back(g);
  if (c.kind() == "sgd") {
    return std::make_unique<torch::optim::SGD>(
        param_groups, torch::optim::SGDOptions(c.lr()).momentum(c.momentum()).weight_decay(c.weight_decay()));
  }
  if (c.kind() == "adam") {
    return std::make_unique<torch::optim::Adam>(
        param_groups,
        torch::optim::AdamOptions(c.lr()).betas({c.beta1(), c.beta2()}).weight_decay(c.weight_decay()));
  }
  return std::make_unique<torch::optim::AdamW>(
      param_groups, torch::optim::AdamWOptions(c.lr()).betas({c.beta1(), c.beta2()}).weight_decay(c.weight_decay()));
}

void set_learning_rate(torch::optim::Optimizer& optimizer, double lr) {
  for (auto& group : optimizer.param_groups()) group.options().set_lr(lr);
}

double synced_optimizer_step(GradientBuckets& buckets, torch::optim::Optimizer& optimizer,
                             const std::vector<torch::Tensor>& parameters, double clip_norm, StepTimes* times,
                             LossScaler* scaler) {
  times->buckets += buckets.bucket_count();
  times->buckets_overlapped += buckets.overlapped_buckets();
  auto t = Clock::now();
  buckets.finalize();
  times->communication += seconds_since(t);
  t = Clock::now();
  if (scaler != nullptr && !scaler->unscale_and_update(parameters)) {
    times->optimizer += seconds_since(t);
    return 0;  // fp16 overflow: every rank skips this step (the gradients are averaged, so all saw it)
  }
  // With no clipping asked, a huge max norm still returns the global L2 norm (for the logs) and never scales.
  const double norm =
      torch::nn::utils::clip_grad_norm_(parameters, clip_norm > 0 ? clip_norm : static_cast<double>(std::numeric_limits<float>::max()));
  optimizer.step();
  times->optimizer += seconds_since(t);
  return norm;
}

namespace {

// optimizer.save() with a copy of every state tensor: the state is swapped for copies while the optimizer
// writes itself (it writes references), then restored, so the archive owns what it holds.
void save_optimizer_copy(torch::serialize::OutputArchive& archive, torch::optim::Optimizer& optimizer) {
  torch::NoGradGuard no_grad;
  std::vector<std::function<void()>> restore;
  auto copy = [](const torch::Tensor& t) { return t.defined() ? t.clone() : t; };
  for (auto& entry : optimizer.state()) {
    torch::optim::OptimizerParamState* state = entry.second.get();
    if (auto* a = dynamic_cast<torch::optim::AdamParamState*>(state)) {
      torch::Tensor m = a->exp_avg(), v = a->exp_avg_sq(), vmax = a->max_exp_avg_sq();
      a->exp_avg(copy(m)).exp_avg_sq(copy(v)).max_exp_avg_sq(copy(vmax));
      restore.push_back([a, m, v, vmax] { a->exp_avg(m).exp_avg_sq(v).max_exp_avg_sq(vmax); });
    } else if (auto* w = dynamic_cast<torch::optim::AdamWParamState*>(state)) {
      torch::Tensor m = w->exp_avg(), v = w->exp_avg_sq(), vmax = w->max_exp_avg_sq();
      w->exp_avg(copy(m)).exp_avg_sq(copy(v)).max_exp_avg_sq(copy(vmax));
      restore.push_back([w, m, v, vmax] { w->exp_avg(m).exp_avg_sq(v).max_exp_avg_sq(vmax); });
    } else if (auto* s = dynamic_cast<torch::optim::SGDParamState*>(state)) {
      torch::Tensor b = s->momentum_buffer();
      s->momentum_buffer(copy(b));
      restore.push_back([s, b] { s->momentum_buffer(b); });
    } else {
      FT_CHECK(false, "save_optimizer_copy: an optimizer state of a kind make_optimizer does not make");
    }
  }
  optimizer.save(archive);
  for (auto& r : restore) r();
}

}  // namespace

void save_training_state(torch::serialize::OutputArchive& archive, const std::string& name, const std::string& prefix,
                         const torch::nn::Module& module, torch::optim::Optimizer& optimizer,
                         const LossScaler& scaler) {
  torch::serialize::OutputArchive module_archive, optimizer_archive;
  save_module_copy(module_archive, module);
  save_optimizer_copy(optimizer_archive, optimizer);
  archive.write(name, module_archive);
  archive.write(prefix + "optimizer", optimizer_archive);
  scaler.save(archive, prefix + "loss_scaler");
}

void load_training_state(torch::serialize::InputArchive& archive, const std::string& name, const std::string& prefix,
                         torch::nn::Module& module, torch::optim::Optimizer& optimizer, LossScaler& scaler) {
  torch::serialize::InputArchive module_archive, optimizer_archive;
  archive.read(name, module_archive);
  archive.read(prefix + "optimizer", optimizer_archive);
  module.load(module_archive);
  optimizer.load(optimizer_archive);
  scaler.load(archive, prefix + "loss_scaler");
}

}  // namespace facetrain
