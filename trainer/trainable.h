// Fine-tuning's "what trains" (the run config's `trainable` section): which parameters train at each epoch
// and each one's learning-rate scale (layer-wise decay). A frozen parameter has requires_grad false, so
// autograd computes no gradient for it; DataParallel leaves it out of the gradient buckets and the task's
// optimizer holds only parameters that train at some epoch, so nothing is communicated or stepped for it.
// The stage is a function of the epoch alone, so a resumed run (any epoch, any world size) freezes exactly
// what the unstopped run froze.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/config.pb.h"
#include "models/parameter_layers.h"

namespace facetrain {

class TrainablePlan {
 public:
  // Checks the section against the model (UserError naming the `trainable.` field: an unknown mode, a
  // block count beyond the model's, a regex that is not one or matches no parameter, unfreeze epochs out
  // of order, nothing left to train) and freezes what epoch 0 does not train. `weight_decay` says whether
  // weight decay applies to a parameter (trainer/optim.h WeightDecayRule); the optimizer groups then split by
  // it too (group_weight_decay). Null: it applies to every parameter.
  TrainablePlan(const proto::TrainableConfig& config, ParameterLayers layers,
                const std::function<bool(const ParameterLayer&)>& weight_decay = nullptr);

  // Sets requires_grad for `epoch`'s stage; true when that changed which parameters train (the task then
  // rebuilds its gradient buckets).
  bool apply(int64_t epoch);

  // The parameters that train at some epoch, one optimizer group per (first epoch, learning-rate scale,
  // weight decay or not), each group's scale of the scheduled learning rate and whether it decays.
  std::vector<std::vector<torch::Tensor>> optimizer_groups() const;
  const std::vector<double>& lr_scales() const { return group_scales_; }
  const std::vector<bool>& group_weight_decay() const { return group_decays_; }

  // Puts `model` (the module the plan's layers come from) in train mode for a step, except its BatchNorm
  // layers whose weights are all frozen now (trainable.freeze_batchnorm): those stay in eval mode, their running
  // statistics fixed. Returns how many BatchNorm layers it fixed.
  int set_train_mode(torch::nn::Module& model) const;

  // "12,416 of 79,874 parameters train (head, blocks 2-2); layer decay 0.75" for the log and run summary.
  std::string describe() const;
  int64_t trainable_elements() const;
  // Whether the section changes anything (not "all" from the start with no decay).
  bool active() const { return active_; }

 private:
  int stage_of(int64_t epoch) const;

  ParameterLayers layers_;
  std::vector<int> first_stage_;       // per parameter: the first stage it trains in, or -1 (never)
  std::vector<int64_t> stage_epochs_;  // stage k starts at this epoch (stage 0 at 0)
  std::vector<int> group_of_;          // per parameter: its optimizer group, or -1
  std::vector<double> group_scales_;
  std::vector<bool> group_decays_;
  std::vector<double> scale_;  // per parameter
  int stage_ = -1;
  double layer_decay_ = 1;
  bool active_ = false;
  bool freeze_batchnorm_ = true;
  mutable int fixed_batchnorm_ = 0;  // BatchNorm layers set_train_mode last kept in eval mode
};

// Sets each optimizer group's learning rate to lr times its scale (scales empty: lr everywhere).
void set_learning_rates(torch::optim::Optimizer& optimizer, double lr, const std::vector<double>& scales);

}  // namespace facetrain
