// The MPI backend's own ring all-reduce for the mean of large float tensors (reduce-scatter, then allgather,
// over non-blocking point-to-point messages, the division fused into the last reduce-scatter step), and the
// scratch buffers it reuses. Why it exists: comm/README.md ("The mean is fused into the reduction").
#include <mpi.h>
#include <torch/types.h>

#include <algorithm>
#include <climits>
#include <memory>
#include <utility>

#include "core/error.h"
#include "comm/comm_internal.h"
#include "comm/mpi_backend.h"

namespace facetrain {
namespace comm_detail {

torch::Tensor ScratchPool::acquire(int64_t bytes) {
  auto best = free_.end();
  for (auto it = free_.begin(); it != free_.end(); ++it) {
    if (it->nbytes() >= static_cast<size_t>(bytes) && (best == free_.end() || it->nbytes() < best->nbytes())) best = it;
  }
  if (best == free_.end()) return torch::empty({std::max<int64_t>(bytes, 64)}, torch::kUInt8);
  torch::Tensor t = *best;
  free_.erase(best);
  return t;
}

void ScratchPool::release(torch::Tensor t) { free_.push_back(std::move(t)); }

namespace {

template <typename T>
void add_into(T* x, const T* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) x[i] += y[i];
}
template <typename T>
void add_scale_into(T* x, const T* y, int64_t n, T scale) {
  for (int64_t i = 0; i < n; ++i) x[i] = (x[i] + y[i]) * scale;
}

// In-place mean over ranks as a ring (reduce-scatter, then allgather) of non-blocking point-to-point
// messages, the division fused into the last reduce-scatter step: per rank 2(n-1)/n of the bytes cross
// the wire, as in MPI's own ring, and no pass over memory is added for the mean. Each rank ends its
// reduce-scatter holding chunk (rank+1) mod n reduced. Messages of one operation share a tag and follow
// each other on every (left -> right) edge in order; concurrent operations use different tags.
template <typename T>
class RingMeanWork final : public MpiWork {
 public:
  RingMeanWork(MPI_Comm comm, int rank, int size, int tag, torch::Tensor tensor, std::shared_ptr<ScratchPool> pool)
      : comm_(comm), rank_(rank), size_(size), tag_(tag), tensor_(std::move(tensor)), pool_(std::move(pool)) {
    count_ = tensor_.numel();
    FT_CHECK((count_ + size_ - 1) / size_ <= INT_MAX, "all_reduce_mean_: a ring chunk exceeds 2^31 elements");
    data_ = tensor_.data_ptr<T>();
    scratch_ = pool_->acquire(((count_ + size_ - 1) / size_) * static_cast<int64_t>(sizeof(T)));
    start_step();  // data starts moving at launch
  }
  ~RingMeanWork() override {
    if (phase_ == Phase::kDone) pool_->release(std::move(scratch_));
  }

  bool advance() override {
    while (phase_ != Phase::kDone) {
      int done = 0;
      FT_MPI_CHECK(MPI_Testall(2, requests_, &done, MPI_STATUSES_IGNORE));
      if (!done) return false;
      finish_step();
      if (phase_ != Phase::kDone) start_step();
    }
    return true;
  }

 private:
  enum class Phase { kReduceScatter, kAllgather, kDone };

  int64_t lo(int chunk) const { return count_ * chunk / size_; }
  int64_t length(int chunk) const { return lo(chunk + 1) - lo(chunk); }
  int wrap(int k) const { return ((k % size_) + size_) % size_; }
  MPI_Datatype type() const { return sizeof(T) == 4 ? MPI_FLOAT : MPI_DOUBLE; }

  void start_step() {
    const int right = wrap(rank_ + 1), left = wrap(rank_ - 1);
    if (phase_ == Phase::kReduceScatter) {
      send_ = wrap(rank_ - step_);
      recv_ = wrap(rank_ - step_ - 1);
      FT_MPI_CHECK(
          MPI_Irecv(scratch_.data_ptr(), static_cast<int>(length(recv_)), type(), left, tag_, comm_, &requests_[0]));
    } else {
      send_ = wrap(rank_ + 1 - step_);
      recv_ = wrap(rank_ - step_);
      FT_MPI_CHECK(
          MPI_Irecv(data_ + lo(recv_), static_cast<int>(length(recv_)), type(), left, tag_, comm_, &requests_[0]));
    }
    FT_MPI_CHECK(
        MPI_Isend(data_ + lo(send_), static_cast<int>(length(send_)), type(), right, tag_, comm_, &requests_[1]));
  }

  void finish_step() {
    if (phase_ == Phase::kReduceScatter) {
      const T* incoming = reinterpret_cast<const T*>(scratch_.data_ptr());
      if (step_ == size_ - 2) {
        add_scale_into(data_ + lo(recv_), incoming, length(recv_), static_cast<T>(1.0 / size_));
      } else {
        add_into(data_ + lo(recv_), incoming, length(recv_));
      }
    }
    if (++step_ == size_ - 1) {
      step_ = 0;
      phase_ = phase_ == Phase::kReduceScatter ? Phase::kAllgather : Phase::kDone;
    }
  }

  MPI_Comm comm_;
  int rank_, size_, tag_;
  torch::Tensor tensor_;
  std::shared_ptr<ScratchPool> pool_;
  torch::Tensor scratch_;
  int64_t count_ = 0;
  T* data_ = nullptr;
  Phase phase_ = Phase::kReduceScatter;
  int step_ = 0, send_ = 0, recv_ = 0;
  MPI_Request requests_[2] = {MPI_REQUEST_NULL, MPI_REQUEST_NULL};
};

}  // namespace

std::unique_ptr<MpiWork> start_ring_mean(MPI_Comm comm, int rank, int size, int tag, const torch::Tensor& tensor,
                                         std::shared_ptr<ScratchPool> pool) {
  if (tensor.scalar_type() == torch::kFloat32) {
    return std::make_unique<RingMeanWork<float>>(comm, rank, size, tag, tensor, std::move(pool));
  }
  return std::make_unique<RingMeanWork<double>>(comm, rank, size, tag, tensor, std::move(pool));
}

}  // namespace comm_detail
}  // namespace facetrain
