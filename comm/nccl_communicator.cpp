// NCCL backend for CUDA tensors, kept thin: the ncclUniqueId broadcast over MPI_COMM_WORLD, ncclCommInitRank,
// collectives on one side stream ordered against the caller's stream with events, ncclCommAbort on a timeout
// or a job abort. Compiled whenever CUDA + NCCL headers exist; linked only with a CUDA LibTorch.
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <cuda_runtime_api.h>
#include <mpi.h>
#include <nccl.h>
#include <sched.h>
#include <torch/cuda.h>
#include <torch/types.h>

#include <chrono>
#include <sstream>
#include <vector>

#include "core/error.h"
#include "comm/comm_internal.h"
#include "comm/communicator.h"

namespace facetrain {
namespace {

using Clock = std::chrono::steady_clock;

const char* nccl_hint(ncclResult_t result) {
  switch (result) {
    case ncclUnhandledCudaError:
      return "a CUDA error inside NCCL: one GPU per rank (device = local rank)? driver new enough for the CUDA "
             "runtime?";
    case ncclSystemError:
      return "a system call failed (network, shared memory): check NCCL_SOCKET_IFNAME and the /dev/shm size; "
             "NCCL_DEBUG=INFO shows details";
    case ncclInvalidArgument:
      return "ranks passed different shapes or dtypes, or a tensor on another device";
    case ncclInvalidUsage:
      return "collectives issued in different orders on different ranks, or a communicator used after abort";
    case ncclRemoteError:
      return "a peer rank failed or was killed";
    default:
      return "run with NCCL_DEBUG=INFO for details";
  }
}

[[noreturn]] void throw_nccl_error(ncclResult_t result, const char* call, const char* file, int line) {
  std::ostringstream oss;
  oss << file << ":" << line << ": NCCL error in " << call << ": " << ncclGetErrorString(result) << " (code "
      << static_cast<int>(result) << "). HINT: " << nccl_hint(result);
  throw std::runtime_error(oss.str());
}

[[noreturn]] void throw_cuda_error(cudaError_t error, const char* call, const char* file, int line) {
  std::ostringstream oss;
  oss << file << ":" << line << ": CUDA error in " << call << ": " << cudaGetErrorString(error)
      << ". HINT: is the device index valid for this node (CUDA_VISIBLE_DEVICES)?";
  throw std::runtime_error(oss.str());
}

}  // namespace
}  // namespace facetrain

#define FT_NCCL_CHECK(call)                                                                     \
  do {                                                                                          \
    const ncclResult_t ft_nccl_rc_ = (call);                                                    \
    if (ft_nccl_rc_ != ncclSuccess) ::facetrain::throw_nccl_error(ft_nccl_rc_, #call, __FILE__, __LINE__); \
  } while (0)

#define FT_CUDA_CHECK(call)                                                                     \
  do {                                                                                          \
    const cudaError_t ft_cuda_rc_ = (call);                                                     \
    if (ft_cuda_rc_ != cudaSuccess) ::facetrain::throw_cuda_error(ft_cuda_rc_, #call, __FILE__, __LINE__); \
  } while (0)

namespace facetrain {
namespace {

ncclDataType_t nccl_type(torch::ScalarType type) {
  switch (type) {
    case torch::kFloat32:
      return ncclFloat32;
    case torch::kFloat64:
      return ncclFloat64;
    case torch::kFloat16:
      return ncclFloat16;
    case torch::kBFloat16:
      return ncclBfloat16;
    case torch::kInt32:
      return ncclInt32;
    case torch::kInt64:
      return ncclInt64;
    case torch::kUInt8:
      return ncclUint8;
    case torch::kInt8:
      return ncclInt8;
    default:
      break;
  }
  FT_CHECK(false, "the NCCL communicator does not support dtype " << type << "; convert explicitly");
}

// An event without timing, owned.
class CudaEvent {
 public:
  CudaEvent() { FT_CUDA_CHECK(cudaEventCreateWithFlags(&event_, cudaEventDisableTiming)); }
  ~CudaEvent() { cudaEventDestroy(event_); }
  CudaEvent(const CudaEvent&) = delete;
  CudaEvent& operator=(const CudaEvent&) = delete;
  cudaEvent_t get() const { return event_; }

 private:
  cudaEvent_t event_ = nullptr;
};

class NcclCommunicator;

class NcclPending final : public PendingCollective {
 public:
  NcclPending(NcclCommunicator* comm, std::unique_ptr<CudaEvent> done, torch::Tensor tensor, std::string label,
              int64_t step)
      : comm_(comm), done_(std::move(done)), tensor_(std::move(tensor)), label_(std::move(label)), step_(step) {}
  void wait() override;
  bool test() override;

 private:
  NcclCommunicator* comm_;
  std::unique_ptr<CudaEvent> done_;
  torch::Tensor tensor_;
  std::string label_;
  int64_t step_;
  bool complete_ = false;
};

class NcclCommunicator final : public Communicator {
 public:
  explicit NcclCommunicator(int device_index)
      : device_(c10::Device(c10::DeviceType::CUDA, static_cast<c10::DeviceIndex>(device_index))),
        stream_(c10::cuda::getStreamFromPool(/*isHighPriority=*/true, device_.index())) {
    FT_MPI_CHECK(MPI_Comm_rank(MPI_COMM_WORLD, &rank_));
    FT_MPI_CHECK(MPI_Comm_size(MPI_COMM_WORLD, &size_));
    c10::cuda::CUDAGuard guard(device_);
    // (collective) every rank: rank 0 makes the id, MPI carries it to the others.
    ncclUniqueId id;
    if (rank_ == 0) FT_NCCL_CHECK(ncclGetUniqueId(&id));
    FT_MPI_CHECK(MPI_Bcast(&id, sizeof(id), MPI_BYTE, 0, MPI_COMM_WORLD));
    FT_NCCL_CHECK(ncclCommInitRank(&comm_, size_, id, rank_));
    comm_detail::register_abort_hook(this, [c = comm_] { ncclCommAbort(c); });
  }

  ~NcclCommunicator() override {
    comm_detail::unregister_abort_hook(this);
    if (!aborted_) ncclCommDestroy(comm_);
  }

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  std::string backend() const override { return "nccl"; }

  using Communicator::all_gather;
  using Communicator::all_reduce_mean_async_;
  using Communicator::all_reduce_sum_;
  using Communicator::all_reduce_sum_async_;
  using Communicator::barrier;
  using Communicator::broadcast_;

  void all_reduce_sum_(torch::Tensor& tensor, const std::string& label) override {
    all_reduce_sum_async_(tensor, label)->wait();
  }

  std::unique_ptr<PendingCollective> all_reduce_sum_async_(torch::Tensor& tensor, const std::string& label) override {
    check(tensor, "all_reduce_sum_async_");
    const ncclDataType_t type = nccl_type(tensor.scalar_type());
    return launch(tensor, label.empty() ? "allreduce of " + comm_detail::format_bytes(tensor.nbytes()) : label,
                  [&] {
                    FT_NCCL_CHECK(ncclAllReduce(tensor.data_ptr(), tensor.data_ptr(), tensor.numel(), type, ncclSum,
                                                comm_, stream_.stream()));
                  });
  }

  std::unique_ptr<PendingCollective> all_reduce_mean_async_(torch::Tensor& tensor, const std::string& label) override {
    check(tensor, "all_reduce_mean_async_");
    FT_CHECK(tensor.is_floating_point(), "all_reduce_mean_: floating-point tensors only, got " << tensor.scalar_type());
    const ncclDataType_t type = nccl_type(tensor.scalar_type());
    return launch(tensor, label.empty() ? "allreduce (mean) of " + comm_detail::format_bytes(tensor.nbytes()) : label,
                  [&] {
                    FT_NCCL_CHECK(ncclAllReduce(tensor.data_ptr(), tensor.data_ptr(), tensor.numel(), type, ncclAvg,
                                                comm_, stream_.stream()));
                  });
  }

  void broadcast_(torch::Tensor& tensor, int root, const std::string& label) override {
    check(tensor, "broadcast_");
    FT_CHECK(root >= 0 && root < size_, "broadcast_: root " << root << " outside 0.." << size_ - 1);
    launch(tensor, label.empty() ? "broadcast of " + comm_detail::format_bytes(tensor.nbytes()) : label, [&] {
      FT_NCCL_CHECK(ncclBroadcast(tensor.data_ptr(), tensor.data_ptr(), tensor.nbytes(), ncclUint8, root, comm_,
                                  stream_.stream()));
    })->wait();
  }

  // ncclAllGather moves equal counts, so every rank pads to the largest dim 0 and the padding is dropped.
  torch::Tensor all_gather(const torch::Tensor& tensor, const std::string& label) override {
    check(tensor, "all_gather");
    torch::Tensor local = tensor.dim() == 0 ? tensor.reshape({1}) : tensor;
    torch::Tensor rows = torch::tensor({local.size(0)}, torch::TensorOptions().dtype(torch::kInt64).device(device_));
    torch::Tensor all_rows = torch::empty({size_}, rows.options());
    launch(all_rows, label + " (sizes)", [&] {
      FT_NCCL_CHECK(ncclAllGather(rows.data_ptr(), all_rows.data_ptr(), 1, ncclInt64, comm_, stream_.stream()));
    })->wait();
    const torch::Tensor counts = all_rows.cpu();
    const int64_t max_rows = counts.max().item<int64_t>();
    std::vector<int64_t> padded_shape(local.sizes().begin(), local.sizes().end());
    padded_shape[0] = max_rows;
    torch::Tensor padded = torch::zeros(padded_shape, local.options());
    padded.narrow(0, 0, local.size(0)).copy_(local);
    padded_shape[0] = max_rows * size_;
    torch::Tensor gathered = torch::empty(padded_shape, local.options());
    launch(gathered, label.empty() ? "allgather of " + comm_detail::format_bytes(local.nbytes()) : label, [&] {
      FT_NCCL_CHECK(ncclAllGather(padded.data_ptr(), gathered.data_ptr(), padded.nbytes(), ncclUint8, comm_,
                                  stream_.stream()));
    })->wait();
    std::vector<torch::Tensor> parts;
    for (int r = 0; r < size_; ++r) parts.push_back(gathered.narrow(0, r * max_rows, counts[r].item<int64_t>()));
    return torch::cat(parts);
  }

  void barrier(const std::string& label) override {
    torch::Tensor one = torch::ones({1}, torch::TensorOptions().dtype(torch::kInt32).device(device_));
    all_reduce_sum_(one, label.empty() ? std::string("barrier") : label);
  }

  // Polls the event; after the timeout aborts the NCCL communicator (the only way to release a kernel
  // waiting for a peer) and throws. NCCL cannot say which ranks did not arrive.
  void wait_event(const CudaEvent& done, const std::string& label, int64_t step) {
    const auto start = Clock::now();
    for (;;) {
      const cudaError_t state = cudaEventQuery(done.get());
      if (state == cudaSuccess) break;
      if (state != cudaErrorNotReady) FT_CUDA_CHECK(state);
      ncclResult_t async = ncclSuccess;
      FT_NCCL_CHECK(ncclCommGetAsyncError(comm_, &async));
      if (async != ncclSuccess) {
        abort_communicator();
        throw_nccl_error(async, label.c_str(), __FILE__, __LINE__);
      }
      const double waited = std::chrono::duration<double>(Clock::now() - start).count();
      if (timeout_seconds_ > 0 && waited > timeout_seconds_) {
        abort_communicator();
        throw CollectiveTimeout(comm_detail::describe_operation(label, step) + " did not complete within " +
                                std::to_string(timeout_seconds_) + " s (NCCL communicator aborted; NCCL cannot tell "
                                "which ranks did not arrive). HINT: a rank stopped making progress, or ranks issued "
                                "collectives in different orders; raise distributed.collective_timeout_s if the "
                                "operation is legitimately slow");
      }
      if (waited > 1e-4) sched_yield();
    }
    // The caller's stream continues after the collective (a no-op wait once the event has completed).
    FT_CUDA_CHECK(cudaStreamWaitEvent(c10::cuda::getCurrentCUDAStream(device_.index()).stream(), done.get(), 0));
  }

  bool query_event(const CudaEvent& done) {
    const cudaError_t state = cudaEventQuery(done.get());
    if (state == cudaErrorNotReady) return false;
    FT_CUDA_CHECK(state);
    FT_CUDA_CHECK(cudaStreamWaitEvent(c10::cuda::getCurrentCUDAStream(device_.index()).stream(), done.get(), 0));
    return true;
  }

 private:
  void check(const torch::Tensor& tensor, const char* op) const {
    FT_CHECK(!aborted_, op << ": the NCCL communicator was aborted after an earlier failure");
    FT_CHECK(tensor.defined() && tensor.device() == device_,
             op << ": the NCCL communicator takes tensors on " << device_ << ", got " << tensor.device());
    FT_CHECK(tensor.is_contiguous(), op << ": tensor must be contiguous");
  }

  // Side stream: collectives run on a stream of their own so backward's kernels on the compute stream keep
  // going while a bucket is reduced (DDP and Horovod do the same). Ordering, both ways, by events: the side
  // stream waits for the producer's work queued so far; the caller's stream waits for `done` in wait().
  template <typename F>
  std::unique_ptr<PendingCollective> launch(const torch::Tensor& tensor, const std::string& label, F&& enqueue) {
    c10::cuda::CUDAGuard guard(device_);
    const c10::cuda::CUDAStream current = c10::cuda::getCurrentCUDAStream(device_.index());
    CudaEvent ready;
    FT_CUDA_CHECK(cudaEventRecord(ready.get(), current.stream()));
    FT_CUDA_CHECK(cudaStreamWaitEvent(stream_.stream(), ready.get(), 0));
    enqueue();
    auto done = std::make_unique<CudaEvent>();
    FT_CUDA_CHECK(cudaEventRecord(done->get(), stream_.stream()));
    // The caching allocator must not hand this memory to another tensor before the side stream is done.
    c10::cuda::CUDACachingAllocator::recordStream(tensor.storage().data_ptr(), stream_);
    return std::make_unique<NcclPending>(this, std::move(done), tensor, label, step_);
  }

  void abort_communicator() {
    if (aborted_) return;
    comm_detail::unregister_abort_hook(this);
    ncclCommAbort(comm_);
    aborted_ = true;
  }

  c10::Device device_;
  c10::cuda::CUDAStream stream_;
  ncclComm_t comm_ = nullptr;
  int rank_ = 0, size_ = 1;
  bool aborted_ = false;
};

void NcclPending::wait() {
  if (complete_) return;
  comm_->wait_event(*done_, label_, step_);
  complete_ = true;
  tensor_ = torch::Tensor();
}

bool NcclPending::test() {
  if (!complete_ && comm_->query_event(*done_)) {
    complete_ = true;
    tensor_ = torch::Tensor();
  }
  return complete_;
}

}  // namespace

bool nccl_available() { return true; }

std::unique_ptr<Communicator> make_nccl_communicator(int device_index) {
  FT_USER_CHECK(torch::cuda::is_available(), "distributed.backend: nccl needs a CUDA device, none is visible");
  return std::make_unique<NcclCommunicator>(device_index);
}

}  // namespace facetrain
