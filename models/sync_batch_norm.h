// SyncBatchNorm2d: the BatchNorm layer of facetrain's conv models. It is LibTorch's BatchNorm2d — the same
// options, parameters, buffers, names and order (checkpoints and torchvision weights load unchanged) and the
// same forward, torch::batch_norm — with one addition: a trainer may give it a function that normalises a
// training batch with the statistics of every rank's batch (distributed.sync_batchnorm, as PyTorch's
// SyncBatchNorm). Without one, or in eval mode, it is BatchNorm2d. (Its own module, not a subclass of
// torch::nn::BatchNorm2dImpl: LibTorch does not export that class's base's virtual functions.)
#pragma once

#include <torch/nn/cloneable.h>
#include <torch/nn/options/batchnorm.h>
#include <torch/nn/pimpl.h>
#include <torch/types.h>

#include <functional>
#include <ostream>

namespace facetrain {

class SyncBatchNorm2dImpl;

// Normalises `input` (N, C, H, W) of a layer in train mode over all ranks' batches, updating the layer's running
// statistics with `momentum` (the fraction of the new statistics, already resolved from the layer's options).
using BatchNormOverRanks =
    std::function<torch::Tensor(SyncBatchNorm2dImpl& layer, const torch::Tensor& input, double momentum)>;

class SyncBatchNorm2dImpl : public torch::nn::Cloneable<SyncBatchNorm2dImpl> {
 public:
  explicit SyncBatchNorm2dImpl(int64_t num_features) : SyncBatchNorm2dImpl(torch::nn::BatchNormOptions(num_features)) {}
  explicit SyncBatchNorm2dImpl(const torch::nn::BatchNormOptions& options);

  torch::Tensor forward(const torch::Tensor& input);
  void reset() override;
  void reset_parameters();  // weight 1, bias 0, running statistics 0 / 1, no batches counted
  void pretty_print(std::ostream& stream) const override;

  void set_over_ranks(BatchNormOverRanks over_ranks) { over_ranks_ = std::move(over_ranks); }
  bool over_ranks() const { return static_cast<bool>(over_ranks_); }

  torch::nn::BatchNormOptions options;
  torch::Tensor weight, bias;                                    // undefined without affine
  torch::Tensor running_mean, running_var, num_batches_tracked;  // undefined without track_running_stats

 private:
  BatchNormOverRanks over_ranks_;
};
TORCH_MODULE(SyncBatchNorm2d);

// Gives every BatchNorm layer of `module` the function (an empty one: back to per-rank statistics); returns how
// many layers it set.
int set_batchnorm_over_ranks(torch::nn::Module& module, const BatchNormOverRanks& over_ranks);

}  // namespace facetrain
