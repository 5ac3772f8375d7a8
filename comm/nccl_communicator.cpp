// NCCL backend for CUDA tensors. The ncclUniqueId travels over MPI_COMM_WORLD with rank 0's status beside it;
// the communicator starts non-blocking with a deadline; collectives run on one side stream and the caller's
// stream waits on the collective's done event on the GPU (the host never spins on an event); a watchdog
// thread polls the outstanding events and NCCL's asynchronous error, and aborts the communicator when one
// fails or outlives distributed.collective_timeout_s. Built and linked with a CUDA LibTorch only, against
// the libnccl that LibTorch loads (CMakeLists.txt).
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <cuda_runtime_api.h>
#include <mpi.h>
#include <nccl.h>
#include <torch/cuda.h>
#include <torch/types.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <sstream>
#include <thread>
#include <vector>

#include "comm/comm_internal.h"
#include "comm/communicator.h"
#include "comm/flight_recorder.h"
#include "core/error.h"
#include "core/log.h"

// --- NCCL version compatibility points: the only places the NCCL version is looked at ---------------------
// ncclAvg (2.10): the division by the world size fused into the reduction; older: sum, then scale.
#if NCCL_VERSION_CODE >= NCCL_VERSION(2, 10, 0)
#define FACETRAIN_NCCL_HAS_AVG 1
#else
#define FACETRAIN_NCCL_HAS_AVG 0
#endif
// ncclCommInitRankConfig with config.blocking = 0 (2.14): a start-up that can be bounded and aborted.
#if NCCL_VERSION_CODE >= NCCL_VERSION(2, 14, 0)
#define FACETRAIN_NCCL_HAS_NONBLOCKING_INIT 1
#else
#define FACETRAIN_NCCL_HAS_NONBLOCKING_INIT 0
#endif

namespace facetrain {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

const char* nccl_hint(ncclResult_t result) {
  switch (result) {
    case ncclUnhandledCudaError:
      return "a CUDA error inside NCCL: one GPU per rank (device = local rank)? driver new enough for the CUDA "
             "runtime?";
    case ncclSystemError:
      return "a system call failed (network, shared memory): check NCCL_SOCKET_IFNAME and the /dev/shm size; "
             "NCCL_DEBUG=INFO shows details";
    case ncclInvalidArgument: return "ranks passed different shapes or dtypes, or a tensor on another device";
    case ncclInvalidUsage:
      return "collectives issued in different orders on different ranks, or a communicator used after abort";
    case ncclRemoteError: return "a peer rank failed or was killed";
    default: return "run with NCCL_DEBUG=INFO for details";
  }
}

std::string nccl_error_text(ncclResult_t result, const char* call) {
  std::ostringstream oss;
  oss << "NCCL error in " << call << ": " << ncclGetErrorString(result) << " (code " << static_cast<int>(result)
      << "). HINT: " << nccl_hint(result);
  return oss.str();
}

[[noreturn]] void throw_nccl_error(ncclResult_t result, const char* call, const char* file, int line) {
  std::ostringstream oss;
  oss << file << ":" << line << ": " << nccl_error_text(result, call);
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

#define FT_NCCL_CHECK(call)                                                                                \
  do {                                                                                                     \
    const ncclResult_t ft_nccl_rc_ = (call);                                                               \
    if (ft_nccl_rc_ != ncclSuccess) ::facetrain::throw_nccl_error(ft_nccl_rc_, #call, __FILE__, __LINE__); \
  } while (0)

#define FT_CUDA_CHECK(call)                                                                                \
  do {                                                                                                     \
    const cudaError_t ft_cuda_rc_ = (call);                                                                \
    if (ft_cuda_rc_ != cudaSuccess) ::facetrain::throw_cuda_error(ft_cuda_rc_, #call, __FILE__, __LINE__); \
  } while (0)

namespace facetrain {
namespace {

ncclDataType_t nccl_type(torch::ScalarType type) {
  switch (type) {
    case torch::kFloat32: return ncclFloat32;
    case torch::kFloat64: return ncclFloat64;
    case torch::kFloat16: return ncclFloat16;
    case torch::kBFloat16: return ncclBfloat16;
    case torch::kInt32: return ncclInt32;
    case torch::kInt64: return ncclInt64;
    case torch::kUInt8: return ncclUint8;
    case torch::kInt8: return ncclInt8;
    default: break;
  }
  FT_CHECK(false, "the NCCL communicator does not support dtype " << type << "; convert explicitly");
}

// Events without timing, reused: creating one per collective costs a driver call each time, and a step
// launches one per gradient bucket. Shared by the issuing threads and the watchdog (which returns them).
class EventPool {
 public:
  ~EventPool() {
    for (cudaEvent_t e : free_) cudaEventDestroy(e);
  }
  cudaEvent_t take() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (!free_.empty()) {
        cudaEvent_t e = free_.back();
        free_.pop_back();
        return e;
      }
    }
    cudaEvent_t e = nullptr;
    FT_CUDA_CHECK(cudaEventCreateWithFlags(&e, cudaEventDisableTiming));
    return e;
  }
  void give_back(cudaEvent_t e) {
    std::lock_guard<std::mutex> lock(mutex_);
    free_.push_back(e);
  }

 private:
  std::mutex mutex_;
  std::vector<cudaEvent_t> free_;
};

class NcclCommunicator;

// A launched collective: `done` is recorded on the side stream after it. The watchdog owns the event's
// return to the pool (only it knows when the GPU has passed it), so the shared record outlives this handle.
struct Flight {
  cudaEvent_t done = nullptr;
  std::string label;
  int64_t step = -1;
  double timeout_seconds = 0;  // the communicator's when launched (the watchdog never reads the setting itself)
  Clock::time_point started;
  std::atomic<bool> finished{false};
  int64_t record = -1;  // its flight-recorder handle (comm/flight_recorder.h), ended when the GPU passes it
};

class NcclPending final : public PendingCollective {
 public:
  NcclPending(NcclCommunicator* comm, std::shared_ptr<Flight> flight) : comm_(comm), flight_(std::move(flight)) {}
  void wait() override;
  bool test() override;

 private:
  NcclCommunicator* comm_;
  std::shared_ptr<Flight> flight_;
  bool ordered_ = false;  // the caller's stream already waits on the collective
};

class NcclCommunicator final : public Communicator {
 public:
  NcclCommunicator(int device_index, double start_timeout_seconds)
      : device_(c10::Device(c10::DeviceType::CUDA, static_cast<c10::DeviceIndex>(device_index))),
        stream_(c10::cuda::getStreamFromPool(/*isHighPriority=*/true, device_.index())) {
    FT_MPI_CHECK(MPI_Comm_rank(MPI_COMM_WORLD, &rank_));
    FT_MPI_CHECK(MPI_Comm_size(MPI_COMM_WORLD, &size_));
    timeout_seconds_ = start_timeout_seconds;
    c10::cuda::CUDAGuard guard(device_);
    start(start_timeout_seconds);
    comm_detail::register_abort_hook(this, [this] { abort_communicator("the job is aborting"); });
    watchdog_ = std::thread([this] { watch(); });
  }

  ~NcclCommunicator() override {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stopping_ = true;
    }
    wake_.notify_all();
    watchdog_.join();
    comm_detail::unregister_abort_hook(this);
    if (!aborted_.load()) {
      ncclCommDestroy(comm_);
    }
    for (auto& flight : in_flight_) events_.give_back(flight->done);  // destroyed with the pool
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
    return launch(tensor, label.empty() ? "allreduce of " + format_bytes(tensor.nbytes()) : label, [&] {
      return ncclAllReduce(tensor.data_ptr(), tensor.data_ptr(), tensor.numel(), type, ncclSum, comm_,
                           stream_.stream());
    });
  }

  std::unique_ptr<PendingCollective> all_reduce_mean_async_(torch::Tensor& tensor, const std::string& label) override {
    check(tensor, "all_reduce_mean_async_");
    FT_CHECK(tensor.is_floating_point(), "all_reduce_mean_: floating-point tensors only, got " << tensor.scalar_type());
    const ncclDataType_t type = nccl_type(tensor.scalar_type());
    return launch(tensor, label.empty() ? "allreduce (mean) of " + format_bytes(tensor.nbytes()) : label, [&] {
#if FACETRAIN_NCCL_HAS_AVG
      return ncclAllReduce(tensor.data_ptr(), tensor.data_ptr(), tensor.numel(), type, ncclAvg, comm_,
                           stream_.stream());
#else
                    const ncclResult_t rc = ncclAllReduce(tensor.data_ptr(), tensor.data_ptr(), tensor.numel(), type,
                                                          ncclSum, comm_, stream_.stream());
                    // The scaling joins the collective on the side stream, before the done event.
                    c10::cuda::CUDAStreamGuard on_side(stream_);
                    tensor.div_(size_);
                    return rc;
#endif
    });
  }

  void broadcast_(torch::Tensor& tensor, int root, const std::string& label) override {
    check(tensor, "broadcast_");
    FT_CHECK(root >= 0 && root < size_, "broadcast_: root " << root << " outside 0.." << size_ - 1);
    launch(tensor, label.empty() ? "broadcast of " + format_bytes(tensor.nbytes()) : label, [&] {
      return ncclBroadcast(tensor.data_ptr(), tensor.data_ptr(), tensor.nbytes(), ncclUint8, root, comm_,
                           stream_.stream());
    })->wait();
  }

  // ncclAllGather moves equal counts, so every rank pads to the largest dim 0 and the padding is dropped.
  torch::Tensor all_gather(const torch::Tensor& tensor, const std::string& label) override {
    check(tensor, "all_gather");
    torch::Tensor local = tensor.dim() == 0 ? tensor.reshape({1}) : tensor;
    torch::Tensor rows = torch::tensor({local.size(0)}, torch::TensorOptions().dtype(torch::kInt64).device(device_));
    torch::Tensor all_rows = torch::empty({size_}, rows.options());
    launch(all_rows, label + " (sizes)", [&] {
      return ncclAllGather(rows.data_ptr(), all_rows.data_ptr(), 1, ncclInt64, comm_, stream_.stream());
    })->wait();
    const torch::Tensor counts = host_copy(all_rows, label);
    const int64_t max_rows = counts.max().item<int64_t>();
    std::vector<int64_t> padded_shape(local.sizes().begin(), local.sizes().end());
    padded_shape[0] = max_rows;
    torch::Tensor padded = torch::zeros(padded_shape, local.options());
    padded.narrow(0, 0, local.size(0)).copy_(local);
    padded_shape[0] = max_rows * size_;
    torch::Tensor gathered = torch::empty(padded_shape, local.options());
    launch(gathered, label.empty() ? "allgather of " + format_bytes(local.nbytes()) : label, [&] {
      return ncclAllGather(padded.data_ptr(), gathered.data_ptr(), padded.nbytes(), ncclUint8, comm_, stream_.stream());
    })->wait();
    std::vector<torch::Tensor> parts;
    for (int r = 0; r < size_; ++r) parts.push_back(gathered.narrow(0, r * max_rows, counts[r].item<int64_t>()));
    return torch::cat(parts);
  }

  // A barrier is a host-side promise: the host waits until the all-reduce has run on the GPU.
  void barrier(const std::string& label) override {
    torch::Tensor one = torch::ones({1}, torch::TensorOptions().dtype(torch::kInt32).device(device_));
    all_reduce_sum_(one, label.empty() ? std::string("barrier") : label);
    host_copy(one, label.empty() ? std::string("barrier") : label);
  }

  // wait(): the caller's stream waits for the collective on the GPU; the host goes on at once. A hang or an
  // NCCL failure surfaces through the watchdog: it aborts the communicator (which releases any kernel or
  // host copy waiting on a peer) and the next call on this communicator throws its message.
  void order_after(const Flight& flight) {
    throw_if_failed();
    if (flight.finished.load()) return;  // already passed on the GPU (and its event maybe reused)
    c10::cuda::CUDAGuard guard(device_);
    FT_CUDA_CHECK(cudaStreamWaitEvent(c10::cuda::getCurrentCUDAStream(device_.index()).stream(), flight.done, 0));
  }

  bool finished(const Flight& flight) {
    throw_if_failed();
    if (flight.finished.load()) return true;
    c10::cuda::CUDAGuard guard(device_);
    const cudaError_t state = cudaEventQuery(flight.done);
    if (state == cudaErrorNotReady) return false;
    FT_CUDA_CHECK(state);
    return true;
  }

 private:
  // (collective) every rank: rank 0 makes the id and sends it with its status, so a failure there reaches
  // every rank instead of leaving them in MPI_Bcast; then a start-up bounded by `timeout_seconds`.
  void start(double timeout_seconds) {
    struct IdMessage {
      int status;  // ncclResult_t of rank 0's ncclGetUniqueId
      ncclUniqueId id;
    } message{};
    if (rank_ == 0) message.status = static_cast<int>(ncclGetUniqueId(&message.id));
    FT_MPI_CHECK(MPI_Bcast(&message, sizeof(message), MPI_BYTE, 0, MPI_COMM_WORLD));
    if (message.status != ncclSuccess) {
      throw std::runtime_error(
          "rank 0: " + nccl_error_text(static_cast<ncclResult_t>(message.status), "ncclGetUniqueId") +
          " (every rank stops: no NCCL communicator without the id)");
    }
#if FACETRAIN_NCCL_HAS_NONBLOCKING_INIT
    ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
    config.blocking = 0;
    const ncclResult_t rc = ncclCommInitRankConfig(&comm_, size_, message.id, rank_, &config);
    if (rc != ncclSuccess && rc != ncclInProgress) {
      if (comm_ != nullptr) ncclCommAbort(comm_);
      throw_nccl_error(rc, "ncclCommInitRankConfig", __FILE__, __LINE__);
    }
    settle("NCCL communicator start-up", timeout_seconds, Clock::now());
#else
    (void)timeout_seconds;  // blocking start-up: bounded only by NCCL's own socket timeouts
    FT_NCCL_CHECK(ncclCommInitRank(&comm_, size_, message.id, rank_));
#endif
  }

  // A non-blocking communicator may answer ncclInProgress to any call: poll its state until the call has
  // taken effect, within the deadline; abort the communicator on an error or at the deadline.
  void settle(const std::string& what, double timeout_seconds, Clock::time_point started) {
    for (;;) {
      ncclResult_t state = ncclSuccess;
      const ncclResult_t rc = ncclCommGetAsyncError(comm_, &state);
      if (rc != ncclSuccess) state = rc;
      if (state == ncclSuccess) return;
      if (state != ncclInProgress) {
        abort_communicator(nccl_error_text(state, what.c_str()));
        throw_if_failed();
      }
      if (timeout_seconds > 0 && seconds_since(started) > timeout_seconds) {
        abort_communicator(comm_detail::describe_operation(what, step_) + " did not complete within " +
                           std::to_string(timeout_seconds) +
                           " s (NCCL communicator aborted). HINT: a rank did not "
                           "start, or the ranks cannot reach each other (NCCL_SOCKET_IFNAME, NCCL_DEBUG=INFO)");
        throw_if_failed();
      }
      std::this_thread::sleep_for(std::chrono::microseconds(100));
    }
  }

  void check(const torch::Tensor& tensor, const char* op) {
    throw_if_failed();
    FT_CHECK(tensor.defined() && tensor.device() == device_,
             op << ": the NCCL communicator takes tensors on " << device_ << ", got " << tensor.device());
    FT_CHECK(tensor.is_contiguous(), op << ": tensor must be contiguous");
  }

  void throw_if_failed() {
    if (!aborted_.load()) return;
    std::lock_guard<std::mutex> lock(mutex_);
    throw CollectiveTimeout(failure_);
  }

  // Side stream: collectives run on a stream of their own so backward's kernels on the compute stream keep
  // going while a bucket is reduced (DDP and Horovod do the same). Ordering, both ways, by events: the side
  // stream waits for the producer's work queued so far; the caller's stream waits for `done` in wait().
  // Called from the training thread, or from autograd's device thread for the gradient hooks (gradient_sync.h).
  template <typename F>
  std::unique_ptr<PendingCollective> launch(const torch::Tensor& tensor, const std::string& label, F&& enqueue) {
    c10::cuda::CUDAGuard guard(device_);
    const c10::cuda::CUDAStream current = c10::cuda::getCurrentCUDAStream(device_.index());
    cudaEvent_t ready = events_.take();
    FT_CUDA_CHECK(cudaEventRecord(ready, current.stream()));
    FT_CUDA_CHECK(cudaStreamWaitEvent(stream_.stream(), ready, 0));
    events_.give_back(ready);  // a recorded event may be re-recorded: the wait above captured this one
    const auto started = Clock::now();
    const ncclResult_t rc = enqueue();
    if (rc != ncclSuccess && rc != ncclInProgress) {
      abort_communicator(nccl_error_text(rc, label.c_str()));
      throw_if_failed();
    }
    if (rc == ncclInProgress) settle(label, timeout_seconds_, started);
    auto flight = std::make_shared<Flight>();
    flight->done = events_.take();
    flight->label = label;
    flight->step = step_;
    flight->timeout_seconds = timeout_seconds_;
    flight->started = started;
    flight->record =
        flight_begin(flight_name().c_str(), ++launched_, step_, static_cast<int64_t>(tensor.nbytes()), label);
    FT_CUDA_CHECK(cudaEventRecord(flight->done, stream_.stream()));
    // The caching allocator must not hand this memory to another tensor before the side stream is done.
    c10::cuda::CUDACachingAllocator::recordStream(tensor.storage().data_ptr(), stream_);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      in_flight_.push_back(flight);
    }
    wake_.notify_all();
    return std::make_unique<NcclPending>(this, std::move(flight));
  }

  // The copy waits on the caller's stream (ordered after the collective by wait()); if a peer never
  // arrives the watchdog's abort releases it, and the failure is thrown here.
  torch::Tensor host_copy(const torch::Tensor& tensor, const std::string& label) {
    torch::Tensor host = tensor.to(torch::kCPU);
    throw_if_failed();
    (void)label;
    return host;
  }

  // The watchdog thread: CUDA event queries and NCCL's error query only (no MPI, no torch ops).
  void watch() {
    cudaSetDevice(device_.index());
    std::unique_lock<std::mutex> lock(mutex_);
    while (!stopping_) {
      if (in_flight_.empty()) {
        wake_.wait(lock);
        continue;
      }
      // Collectives complete in issue order on the one side stream: only the oldest can be late.
      std::shared_ptr<Flight> oldest = in_flight_.front();
      // Under the lock, so abort_communicator (which sets aborted_ under it first) cannot free the
      // communicator while this query runs.
      ncclResult_t async = ncclSuccess;
      if (!aborted_.load()) ncclCommGetAsyncError(comm_, &async);
      lock.unlock();
      const cudaError_t state = cudaEventQuery(oldest->done);
      lock.lock();
      if (state == cudaSuccess) {
        oldest->finished.store(true);
        flight_end(oldest->record);
        events_.give_back(oldest->done);
        in_flight_.pop_front();
        continue;
      }
      if (aborted_.load()) {
        wake_.wait_for(lock, std::chrono::milliseconds(50));
        continue;
      }
      std::string failure;
      if (state != cudaErrorNotReady) {
        failure =
            comm_detail::describe_operation(oldest->label, oldest->step) + ": CUDA error " + cudaGetErrorString(state);
      } else if (async != ncclSuccess && async != ncclInProgress) {
        failure = comm_detail::describe_operation(oldest->label, oldest->step) + ": " +
                  nccl_error_text(async, "ncclCommGetAsyncError");
      } else if (oldest->timeout_seconds > 0 && seconds_since(oldest->started) > oldest->timeout_seconds) {
        failure = comm_detail::describe_operation(oldest->label, oldest->step) + " did not complete within " +
                  std::to_string(oldest->timeout_seconds) +
                  " s (NCCL communicator aborted by the watchdog; NCCL cannot tell which ranks did not arrive). "
                  "HINT: a rank stopped making progress, or ranks issued collectives in different orders; raise "
                  "distributed.collective_timeout_s if the operation is legitimately slow";
      }
      if (!failure.empty()) {
        lock.unlock();
        abort_communicator(failure);
        lock.lock();
        continue;
      }
      wake_.wait_for(lock, std::chrono::milliseconds(1));
    }
  }

  // ncclCommAbort may be called from any thread: it releases kernels and calls waiting on peers. The first
  // reason wins; later calls on this communicator throw it.
  void abort_communicator(const std::string& reason) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (aborted_.load()) return;
      failure_ = reason;
      aborted_.store(true);
    }
    comm_detail::unregister_abort_hook(this);
    if (comm_ != nullptr) ncclCommAbort(comm_);
  }

  c10::Device device_;
  c10::cuda::CUDAStream stream_;
  ncclComm_t comm_ = nullptr;
  int rank_ = 0, size_ = 1;
  EventPool events_;
  int64_t launched_ = 0;  // collectives launched: the flight recorder's sequence numbers (one issuer at a time)

  std::mutex mutex_;  // guards in_flight_, failure_, stopping_
  std::condition_variable wake_;
  std::deque<std::shared_ptr<Flight>> in_flight_;
  std::string failure_;
  std::atomic<bool> aborted_{false};
  bool stopping_ = false;
  std::thread watchdog_;
};

void NcclPending::wait() {
  if (ordered_) return;
  comm_->order_after(*flight_);
  ordered_ = true;
}

bool NcclPending::test() {
  if (!comm_->finished(*flight_)) return false;
  wait();
  return true;
}

}  // namespace

bool nccl_available() { return true; }

std::unique_ptr<Communicator> make_nccl_communicator(int device_index, double start_timeout_seconds) {
  FT_USER_CHECK(torch::cuda::is_available(), "distributed.backend: nccl needs a CUDA device, none is visible");
  return std::make_unique<NcclCommunicator>(device_index, start_timeout_seconds);
}

}  // namespace facetrain
