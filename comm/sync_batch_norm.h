// Batch normalisation over the global batch (PyTorch's SyncBatchNorm, torch/nn/modules/_functions.py): each rank
// computes its batch's per-channel mean and variance, the ranks exchange them (one all-reduce of W x (2C + 1)
// floats), and every rank normalises with the statistics of all W batches, combined exactly (Chan et al.'s
// parallel variance). Backward sums the gradients of those statistics over the ranks (one all-reduce of the
// same size), so each rank's input gradient is that of the global batch: W ranks x B images give the gradients
// and running statistics of one rank x W*B images.
#pragma once

#include <torch/types.h>

#include "comm/communicator.h"

namespace facetrain {

// (collective) every rank, at each training forward of a BatchNorm layer, in the same order (the backward's
// collective then runs in the same order too). `input` is (N, C, ...), any floating dtype (statistics in fp32,
// the output in the input's dtype); `weight` and `bias` (C) may be undefined (no affine). `running_mean` and
// `running_var` (C), when defined, are updated in place with `momentum` as BatchNorm does (the unbiased global
// variance). The communicator must outlive the backward pass.
torch::Tensor batch_norm_over_ranks(Communicator& comm, const torch::Tensor& input, const torch::Tensor& weight,
                                    const torch::Tensor& bias, torch::Tensor running_mean, torch::Tensor running_var,
                                    double momentum, double eps);

}  // namespace facetrain
