// SyncBatchNorm2d (sync_batch_norm.h): LibTorch's BatchNorm2d (torch/csrc/api/src/nn/modules/batchnorm.cpp and
// normalization's NormImplBase), plus the function over ranks.
#include "models/sync_batch_norm.h"

#include <torch/torch.h>

#include "core/error.h"

namespace facetrain {

SyncBatchNorm2dImpl::SyncBatchNorm2dImpl(const torch::nn::BatchNormOptions& options_) : options(options_) {
  SyncBatchNorm2dImpl::reset();
}

void SyncBatchNorm2dImpl::reset() {
  const int64_t n = options.num_features();
  if (options.affine()) {
    weight = register_parameter("weight", torch::empty({n}));
    bias = register_parameter("bias", torch::empty({n}));
  } else {
    weight = register_parameter("weight", torch::Tensor(), /*requires_grad=*/false);
    bias = register_parameter("bias", torch::Tensor(), /*requires_grad=*/false);
  }
  if (options.track_running_stats()) {
    running_mean = register_buffer("running_mean", torch::zeros({n}));
    running_var = register_buffer("running_var", torch::ones({n}));
    num_batches_tracked = register_buffer("num_batches_tracked", torch::tensor(0, torch::dtype(torch::kLong)));
  } else {
    running_mean = register_buffer("running_mean", torch::Tensor());
    running_var = register_buffer("running_var", torch::Tensor());
    num_batches_tracked = register_buffer("num_batches_tracked", torch::Tensor());
  }
  reset_parameters();
}

void SyncBatchNorm2dImpl::reset_parameters() {
  torch::NoGradGuard no_grad;
  if (options.track_running_stats()) {
    running_mean.zero_();
    running_var.fill_(1);
    num_batches_tracked.zero_();
  }
  if (options.affine()) {
    weight.fill_(1);
    bias.zero_();
  }
}

void SyncBatchNorm2dImpl::pretty_print(std::ostream& stream) const {
  stream << std::boolalpha << "facetrain::SyncBatchNorm2d(" << options.num_features() << ", eps=" << options.eps()
         << ", momentum=";
  if (options.momentum().has_value()) {
    stream << *options.momentum();
  } else {
    stream << "None";
  }
  stream << ", affine=" << options.affine() << ", track_running_stats=" << options.track_running_stats()
         << (over_ranks_ ? ", over ranks" : "") << ")";
}

torch::Tensor SyncBatchNorm2dImpl::forward(const torch::Tensor& input) {
  FT_CHECK(input.dim() == 4, "BatchNorm2d expects (N, C, H, W), got " << input.sizes());
  // As BatchNorm's own forward: count the batch, then momentum, or a cumulative average without one.
  double momentum = options.momentum().value_or(0.0);
  if (is_training() && options.track_running_stats()) {
    num_batches_tracked.add_(1);
    if (!options.momentum().has_value()) momentum = 1.0 / num_batches_tracked.item<double>();
  }
  if (over_ranks_ && is_training()) return over_ranks_(*this, input, momentum);
  return torch::batch_norm(input, weight, bias, running_mean, running_var,
                           is_training() || !options.track_running_stats(), momentum, options.eps(),
                           at::globalContext().userEnabledCuDNN());
}

int set_batchnorm_over_ranks(torch::nn::Module& module, const BatchNormOverRanks& over_ranks) {
  int count = 0;
  for (const auto& m : module.modules()) {
    if (auto* layer = m->as<SyncBatchNorm2dImpl>()) {
      layer->set_over_ranks(over_ranks);
      ++count;
    }
  }
  return count;
}

}  // namespace facetrain
