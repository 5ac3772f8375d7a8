// Optimizers from the config (AdamW, Adam, SGD), learning-rate setting per step, and the data-parallel
// step every task shares: backward on micro-batches with gradient sync on the last, clip, optimizer step.
#pragma once

#include <torch/torch.h>

#include <memory>
#include <regex>
#include <string>
#include <vector>

#include "comm/gradient_sync.h"
#include "core/config.pb.h"
#include "trainer/precision.h"
#include "trainer/task.h"

namespace facetrain {

std::unique_ptr<torch::optim::Optimizer> make_optimizer(const proto::OptimizerConfig& config,
                                                        std::vector<torch::Tensor> parameters);
// One parameter group per entry (fine-tuning's groups: trainer/trainable.h), all with the config's options.
std::unique_ptr<torch::optim::Optimizer> make_optimizer(const proto::OptimizerConfig& config,
                                                        const std::vector<std::vector<torch::Tensor>>& groups);
// The same with each group's weight decay on (the config's) or off (0), one flag per group.
std::unique_ptr<torch::optim::Optimizer> make_optimizer(const proto::OptimizerConfig& config,
                                                        const std::vector<std::vector<torch::Tensor>>& groups,
                                                        const std::vector<bool>& weight_decay);
void set_learning_rate(torch::optim::Optimizer& optimizer, double lr);

// Which parameters optimizer.weight_decay applies to: not 1-D tensors (biases, norm weights) nor position
// embeddings and class tokens, as timm, BEiT and Hugging Face's Trainer do; optimizer.no_weight_decay exempts
// more names, optimizer.weight_decay_on forces names back (".*": all, PyTorch's plain behaviour).
class WeightDecayRule {
 public:
  // UserError naming the field when a pattern is not a regular expression.
  explicit WeightDecayRule(const proto::OptimizerConfig& config);
  bool applies(const std::string& name, const torch::Tensor& parameter) const;
  // "weight decay 0.05 on 26 tensors (79,104 parameters), none on 40 (1,354 parameters: 1-D, pos_embed,
  // cls_token)", for the log.
  std::string describe(const torch::nn::Module& module) const;

 private:
  double weight_decay_;
  std::vector<std::pair<std::string, std::regex>> exempt_, forced_;
};

// A module's parameters in two optimizer groups, those weight decay applies to and the others (empty
// groups left out), with their flags for make_optimizer.
struct DecayGroups {
  std::vector<std::vector<torch::Tensor>> groups;
  std::vector<bool> weight_decay;
};
DecayGroups weight_decay_groups(const torch::nn::Module& module, const WeightDecayRule& rule);

// (collective) Waits for the gradient buckets (exposed communication), unscales the gradients when a loss
// scaler is given (fp16), clips the global norm when clip_norm > 0, and steps the optimizer; adds the times
// to `times`. Returns the pre-clip gradient norm as a 0-dim tensor on the parameters' device (read it with
// core/host_reads.h only where it is logged), or 0 when the scaler found inf/NaN and skipped the step.
torch::Tensor synced_optimizer_step(GradientBuckets& buckets, torch::optim::Optimizer& optimizer,
                                    const std::vector<torch::Tensor>& parameters, double clip_norm, StepTimes* times,
                                    LossScaler* scaler = nullptr);

// The checkpointed training state of one module (CPU copies: the archive may be serialised on another thread
// while training goes on, and it belongs to no device) (the payload layout of models/checkpoint.h): the module
// under `name` (its registry name: "model", "generator", ...), its optimizer under "<prefix>optimizer" and
// its loss scaler under "<prefix>loss_scaler"; prefix is "" for a model's only module, "<name>_" otherwise.
void save_training_state(torch::serialize::OutputArchive& archive, const std::string& name, const std::string& prefix,
                         const torch::nn::Module& module, torch::optim::Optimizer& optimizer, const LossScaler& scaler);
// Loading copies into the live tensors (models/checkpoint.h load_module_in_place) and moves the optimizer state
// onto each parameter's device: the archive is read onto the CPU, the model stays where it is.
void load_training_state(torch::serialize::InputArchive& archive, const std::string& name, const std::string& prefix,
                         torch::nn::Module& module, torch::optim::Optimizer& optimizer, LossScaler& scaler);

}  // namespace facetrain
