// Optimizer construction and the shared synced step (see optim.h).
#include "trainer/optim.h"

#include <limits>

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

void save_training_state(torch::serialize::OutputArchive& archive, const std::string& name, const std::string& prefix,
                         const torch::nn::Module& module, const torch::optim::Optimizer& optimizer,
                         const LossScaler& scaler) {
  torch::serialize::OutputArchive module_archive, optimizer_archive;
  module.save(module_archive);
  optimizer.save(optimizer_archive);
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
