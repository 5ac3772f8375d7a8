// DataParallel: one module trained data-parallel, as PyTorch's DDP wraps a module and owns its Reducer. It
// owns the module's gradient buckets (made once from DataParallelOptions, which the trainer builds from the
// run config's `distributed` section), broadcasts the module's state at the start and averages its buffers.
// Training tasks describe their modules and losses; nothing else reads communication settings.
#pragma once

#include <torch/torch.h>

#include <memory>
#include <string>
#include <vector>

#include "comm/communicator.h"
#include "comm/gradient_sync.h"

namespace facetrain {

struct DataParallelOptions {
  int64_t bucket_cap_bytes = kDefaultBucketCapBytes;  // distributed.bucket_cap_mb
  // distributed.first_bucket_mb. The first bucket (the last layers' gradients, ready first in backward) is
  // small so that its all-reduce starts early and overlaps the rest of the backward pass; it is also at most
  // a quarter of the model's synced bytes, so that a model smaller than one bucket still overlaps.
  int64_t first_bucket_cap_bytes = kDefaultFirstBucketCapBytes;
};

class DataParallel {
 public:
  // Every rank, with the same module structure: builds the gradient buckets over the module's parameters
  // (GradientBuckets' contract applies: gradient_sync.h). No collective call: a task builds it inside the
  // setup agreement. `name` labels the buckets in errors. The communicator and the module must outlive this.
  DataParallel(Communicator& comm, torch::nn::Module& module, const DataParallelOptions& options,
               std::string name = "gradient");

  // The module's parameters, in the order the buckets were built from (for optimizers and clipping).
  const std::vector<torch::Tensor>& parameters() const { return parameters_; }
  GradientBuckets& buckets() { return *buckets_; }
  // Rebuilds the buckets over the parameters that require a gradient now (fine-tuning's unfreeze: every
  // rank does it at the same epoch, so no collective is needed).
  void rebuild_buckets();
  // Gradient bytes the buckets all-reduce per step (each bucket also carries one flag per parameter), and
  // the log line "gradient sync: 2 buckets, 1433600 bytes per step".
  int64_t bytes_per_step() const;
  std::string describe() const;

  // Only the backward with sync enabled communicates (gradient accumulation: the last micro-batch).
  void set_sync_enabled(bool enabled) { buckets_->set_sync_enabled(enabled); }
  // Before a step: every gradient zeroed in its bucket, never freed (GradientBuckets::zero_gradients).
  void zero_grad() { buckets_->zero_gradients(); }

  // (collective) Checks that every rank built the same parameter list, then makes every rank's parameters
  // and buffers equal to root's (once, at the start, after the setup agreement).
  void broadcast_state(int root = 0);
  // (collective) Averages the module's floating-point buffers (BatchNorm running statistics) over ranks.
  void average_buffers();
  // The module's floating-point buffers: each rank updates them from its own shard between averagings.
  std::vector<torch::Tensor> rank_local_buffers() const;

 private:
  Communicator& comm_;
  torch::nn::Module& module_;
  std::vector<torch::Tensor> parameters_;
  DataParallelOptions options_;
  std::string name_;
  std::unique_ptr<GradientBuckets> buckets_;
};

}  // namespace facetrain
