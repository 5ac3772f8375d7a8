// Scoring a list of store images with a model on every rank: each rank takes a contiguous, non-padded
// run of whole batches (eval_shard over batches), runs the model, and the results are gathered in the original order on
// every rank — so every image is counted exactly once whatever the number of ranks. Used by validation and eval.
#pragma once

#include <torch/types.h>

#include <functional>
#include <string>
#include <vector>

#include "datastore/loader.h"
#include "runtime/process_context.h"

namespace facetrain {

struct GatheredScores {
  torch::Tensor outputs;  // float32 N x K, row i for indices[i]
  torch::Tensor labels;   // int64 N
};

// (collective) Runs `model` (a batch of normalized images on ctx.device -> N x output_size float outputs)
// over `indices` of the store in batches of `batch_size`, without gradients, and gathers the outputs.
GatheredScores score_store_images(const std::string& store_path, const std::vector<int64_t>& indices,
                                  Normalization normalization, int64_t batch_size, int64_t output_size,
                                  ProcessContext& ctx, const std::function<torch::Tensor(const torch::Tensor&)>& model);

// The validation indices of a store: `split` if it has images, else "test" (logged once), else empty.
std::vector<int64_t> validation_indices(const StoreReader& store, const std::string& split, std::string* used_split);

}  // namespace facetrain
