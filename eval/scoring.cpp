// Distributed scoring (see scoring.h).
#include "comm/communicator.h"
#include "eval/scoring.h"

#include <torch/torch.h>

#include <numeric>

#include "core/error.h"

namespace facetrain {

GatheredScores score_store_images(const std::string& store_path, const std::vector<int64_t>& indices,
                                  Normalization normalization, int64_t batch_size, int64_t output_size,
                                  ProcessContext& ctx,
                                  const std::function<torch::Tensor(const torch::Tensor&)>& model) {
  torch::NoGradGuard no_grad;
  // Ranks take whole global batches (a contiguous run of them), so every image is scored in the same batch
  // whatever the number of ranks: outputs are bitwise the same on 1, 2 or 3 ranks, not just close.
  const int64_t batches = (static_cast<int64_t>(indices.size()) + batch_size - 1) / batch_size;
  std::vector<int64_t> batch_ids(batches);
  std::iota(batch_ids.begin(), batch_ids.end(), 0);
  const std::vector<int64_t> my_batches = eval_shard(batch_ids, ctx.rank, ctx.world_size);
  std::vector<int64_t> mine;
  if (!my_batches.empty()) {
    const auto begin = my_batches.front() * batch_size;
    const auto end = std::min<int64_t>((my_batches.back() + 1) * batch_size, indices.size());
    mine.assign(indices.begin() + begin, indices.begin() + end);
  }
  std::vector<torch::Tensor> outputs, labels;
  if (!mine.empty()) {
    ShardLoader loader(store_path, in_order_loader_options(mine, batch_size, normalization));
    loader.start_epoch(0);
    Batch batch;
    while (loader.next(&batch)) {
      outputs.push_back(model(batch.images.to(ctx.device)).to(torch::kCPU, torch::kFloat32).contiguous());
      labels.push_back(batch.labels);
    }
  }
  // (collective) every rank, also one with an empty slice (more ranks than images).
  torch::Tensor local_out = outputs.empty() ? torch::empty({0, output_size}) : torch::cat(outputs);
  torch::Tensor local_labels = labels.empty() ? torch::empty({0}, torch::kInt64) : torch::cat(labels);
  GatheredScores gathered;
  gathered.outputs = ctx.comm->all_gather(local_out);
  gathered.labels = ctx.comm->all_gather(local_labels);
  FT_CHECK(gathered.outputs.size(0) == static_cast<int64_t>(indices.size()),
           "gathered " << gathered.outputs.size(0) << " rows for " << indices.size() << " images");
  return gathered;
}

std::vector<int64_t> validation_indices(const StoreReader& store, const std::string& split, std::string* used_split) {
  if (split.empty()) return {};
  std::vector<int64_t> indices = store.split_indices(parse_split(split, "data.val_split"));
  *used_split = split;
  if (indices.empty() && split != "test") {
    indices = store.split_indices(Split::kTest);
    *used_split = "test";
  }
  return indices;
}

}  // namespace facetrain
