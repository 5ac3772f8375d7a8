// Optimizers from the config (AdamW, Adam, SGD), learning-rate setting per step, and the data-parallel
// step every task shares: backward on micro-batches with gradient sync on the last, clip, optimizer step.
#pragma once

#include <torch/torch.h>

#include <memory>
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
void set_learning_rate(torch::optim::Optimizer& optimizer, double lr);

// (collective) Waits for the gradient buckets (exposed communication), unscales the gradients when a loss
// scaler is given (fp16), clips the global norm when clip_norm > 0, and steps the optimizer; adds the times
// to `times`. Returns the pre-clip gradient norm, or 0 when the scaler found inf/NaN and skipped the step.
double synced_optimizer_step(GradientBuckets& buckets, torch::optim::Optimizer& optimizer,
                             const std::vector<torch::Tensor>& parameters, double clip_norm, StepTimes* times,
                             LossScaler* scaler = nullptr);

// The checkpointed training state of one module (copies: the archive may be serialised on another thread
// while training goes on) (the payload layout of models/checkpoint.h): the module
// under `name` (its registry name: "model", "generator", ...), its optimizer under "<prefix>optimizer" and
// its loss scaler under "<prefix>loss_scaler"; prefix is "" for a model's only module, "<name>_" otherwise.
void save_training_state(torch::serialize::OutputArchive& archive, const std::string& name, const std::string& prefix,
                         const torch::nn::Module& module, torch::optim::Optimizer& optimizer,
                         const LossScaler& scaler);
void load_training_state(torch::serialize::InputArchive& archive, const std::string& name, const std::string& prefix,
                         torch::nn::Module& module, torch::optim::Optimizer& optimizer, LossScaler& scaler);

}  // namespace facetrain
