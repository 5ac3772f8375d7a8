// An exponential moving average of a module's parameters (the run config's `ema` section): the shadow
// moves after each optimizer step, is swapped in for evaluation, and is saved in checkpoints in the layout
// of the module's own archive (so eval and export load it like the raw weights, from another key).
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <vector>

#include "comm/communicator.h"
#include "core/config.pb.h"

namespace facetrain {

class WeightEma {
 public:
  // Checks the section (UserError naming `ema.decay` / `ema.warmup_power`); starts as a copy of the weights.
  WeightEma(const proto::EmaConfig& config, torch::nn::Module& module);

  // The decay of the update after `updates` earlier ones.
  double decay_at(int64_t updates) const;
  // After the optimizer step that made `updates` + 1 steps in all (the trainer's step counter before it).
  void update(int64_t updates);
  // Makes the shadow equal to the weights (after the start-of-run broadcast, so every rank starts equal).
  void reset();
  // Exchanges the shadow and the module's parameters (call twice: evaluate in between).
  void swap();

  // The module's archive with the shadow for its parameters (buffers as they are now), under weights_key(key,
  // ModelWeights::kEma) (models/checkpoint.h).
  void save(torch::serialize::OutputArchive& archive, const std::string& key) const;
  // Reads the shadow written by save(); false when the archive has none (a checkpoint from a run without
  // EMA: the shadow then starts from the loaded weights).
  bool load(torch::serialize::InputArchive& archive, const std::string& key);
  // (collective) Throws on every rank when the shadows differ between ranks (a float64 checksum each).
  void check_identical(Communicator& comm) const;

 private:
  torch::nn::Module& module_;
  std::vector<torch::Tensor> parameters_;  // the module's, in named_parameters order
  std::vector<torch::Tensor> shadow_;
  double decay_, warmup_power_;
};

}  // namespace facetrain
