// DataParallel (see data_parallel.h).
#include "comm/data_parallel.h"

#include <utility>

namespace facetrain {

DataParallel::DataParallel(Communicator& comm, torch::nn::Module& module, const DataParallelOptions& options,
                           std::string name)
    : comm_(comm), module_(module), parameters_(module.parameters()) {
  buckets_ = std::make_unique<GradientBuckets>(comm_, parameters_, options.bucket_cap_bytes, std::move(name));
}

void DataParallel::broadcast_state(int root) {
  buckets_->check_same_parameters_on_every_rank();
  broadcast_module_state(comm_, module_, root);
}

void DataParallel::average_buffers() { facetrain::average_buffers(comm_, module_); }

std::vector<torch::Tensor> DataParallel::rank_local_buffers() const {
  std::vector<torch::Tensor> out;
  for (const auto& b : module_.buffers(/*recurse=*/true)) {
    if (b.defined() && b.is_floating_point()) out.push_back(b);
  }
  return out;
}

}  // namespace facetrain
