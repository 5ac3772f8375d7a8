// DataParallel (see data_parallel.h).
#include "comm/data_parallel.h"

#include <algorithm>
#include <sstream>
#include <utility>

namespace facetrain {

DataParallel::DataParallel(Communicator& comm, torch::nn::Module& module, const DataParallelOptions& options,
                           std::string name)
    : comm_(comm), module_(module), parameters_(module.parameters()), options_(options), name_(std::move(name)) {
  rebuild_buckets();
}

void DataParallel::rebuild_buckets() {
  buckets_.reset();  // its hooks go before the new buckets attach theirs
  int64_t synced_bytes = 0;
  for (const auto& p : parameters_) {
    if (p.requires_grad()) synced_bytes += p.numel() * p.element_size();
  }
  const int64_t first_cap = std::max<int64_t>(1, std::min(options_.first_bucket_cap_bytes, synced_bytes / 4));
  buckets_ = std::make_unique<GradientBuckets>(comm_, parameters_, options_.bucket_cap_bytes, name_, first_cap);
}

int64_t DataParallel::bytes_per_step() const {
  int64_t bytes = 0;
  for (int64_t b = 0; b < buckets_->bucket_count(); ++b) bytes += buckets_->bucket_bytes(b);
  return bytes;
}

std::string DataParallel::describe() const {
  std::ostringstream s;
  s << name_ << " sync: " << buckets_->bucket_count() << (buckets_->bucket_count() == 1 ? " bucket, " : " buckets, ")
    << bytes_per_step() << " bytes per step";
  return s.str();
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
