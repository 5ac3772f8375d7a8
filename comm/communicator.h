// The one communication unit of facetrain: every MPI and NCCL call lives under comm/. Model code,
// training loops and eval call only this typed API (element count and dtype come from the tensor).
// Backends: MPI for CPU tensors (always), NCCL for CUDA tensors (compiled when CUDA + NCCL are found).
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/error.h"

namespace facetrain {

// --- process-wide MPI lifetime (called by launcher/ only) ---------------------------------------
// Initialises MPI with MPI_THREAD_SERIALIZED (why: mpi_communicator.cpp). Safe when started without
// mpirun (a world of one); a no-op when MPI is already initialised.
void comm_initialize(int* argc, char*** argv);
// Finalises MPI if comm_initialize() started it. Destroy every Communicator first.
void comm_finalize();
// Aborts every rank of the job (ncclCommAbort on live NCCL communicators, then MPI_Abort) so no peer
// blocks in the next collective. Never returns.
[[noreturn]] void comm_abort(int exit_code);
bool comm_initialized();

// A started non-blocking collective. Not thread-safe; finish it before its communicator is destroyed.
class PendingCollective {
 public:
  virtual ~PendingCollective() = default;
  // Completes the operation. After the communicator's timeout it throws CollectiveTimeout naming the
  // operation, the step and the ranks that did not arrive; the operation then stays pending and wait()
  // may be called again. Destroying an unfinished operation keeps its tensor alive until the process
  // ends (an MPI non-blocking collective cannot be cancelled).
  virtual void wait() = 0;
  virtual bool test() = 0;  // true when complete (no blocking); also drives MPI progress
};

// Collective: every rank must make the same calls in the same order with tensors of the same shape
// and dtype. With one rank every operation is a cheap no-op that runs the same code path.
// `label` (optional everywhere) names the operation in a timeout message, e.g. "allreduce of gradient
// bucket 3 of 5 (6.2 MB)"; the communicator adds the step and the ranks that did not arrive.
// Not thread-safe: one thread at a time (the training thread; autograd hooks run on it for CPU tensors).
class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  virtual std::string backend() const = 0;  // "mpi" | "nccl"

  // In-place sum over ranks. Contiguous tensors; float32/float64/int32/int64/uint8/int8 (MPI; anything
  // else throws, never a silent cast), plus bf16/fp16 on NCCL.
  virtual void all_reduce_sum_(torch::Tensor& tensor, const std::string& label) = 0;
  void all_reduce_sum_(torch::Tensor& tensor) { all_reduce_sum_(tensor, std::string()); }
  // Non-blocking version: the tensor must not be touched until wait()/test() reports completion.
  virtual std::unique_ptr<PendingCollective> all_reduce_sum_async_(torch::Tensor& tensor, const std::string& label) = 0;
  std::unique_ptr<PendingCollective> all_reduce_sum_async_(torch::Tensor& tensor) {
    return all_reduce_sum_async_(tensor, std::string());
  }
  // In-place mean over ranks (the sum divided by size()), floating-point tensors only. The division is
  // fused into the reduction (NCCL's ncclAvg; the MPI backend's own ring for large tensors), so it costs
  // no extra pass over memory: what gradient averaging uses.
  virtual std::unique_ptr<PendingCollective> all_reduce_mean_async_(torch::Tensor& tensor,
                                                                    const std::string& label) = 0;
  std::unique_ptr<PendingCollective> all_reduce_mean_async_(torch::Tensor& tensor) {
    return all_reduce_mean_async_(tensor, std::string());
  }
  void all_reduce_mean_(torch::Tensor& tensor, const std::string& label = std::string()) {
    all_reduce_mean_async_(tensor, label)->wait();
  }
  // Copies root's tensor into every rank's (same shape and dtype everywhere; any dtype: bytes are moved).
  virtual void broadcast_(torch::Tensor& tensor, int root, const std::string& label) = 0;
  void broadcast_(torch::Tensor& tensor, int root) { broadcast_(tensor, root, std::string()); }
  // Concatenates every rank's tensor along dim 0 in rank order; dim 0 may differ between ranks (sizes are
  // exchanged), the other dims and the dtype must not.
  virtual torch::Tensor all_gather(const torch::Tensor& tensor, const std::string& label) = 0;
  torch::Tensor all_gather(const torch::Tensor& tensor) { return all_gather(tensor, std::string()); }
  virtual void barrier(const std::string& label) = 0;
  void barrier() { barrier(std::string()); }

  // Seconds a collective may wait before throwing CollectiveTimeout (0: forever). Set it on every rank.
  void set_timeout_seconds(double seconds) { timeout_seconds_ = seconds; }
  double timeout_seconds() const { return timeout_seconds_; }
  // The training step named in timeout messages (-1: none). The loop sets it once per step.
  void set_step(int64_t step) { step_ = step; }
  int64_t step() const { return step_; }

  // Its name in the flight recorder (comm/flight_recorder.h): "control" (the launcher's) or "gradient".
  void set_flight_name(std::string name) { flight_name_ = std::move(name); }
  const std::string& flight_name() const { return flight_name_; }

  // Whether this rank has taken part in the job's setup agreement (runtime/setup_agreement.h). Until then a
  // UserError on this rank is one the other ranks cannot know of: the launcher joins the agreement for it.
  bool setup_agreed() const { return setup_agreed_; }
  void set_setup_agreed() { setup_agreed_ = true; }

 protected:
  double timeout_seconds_ = 0;
  int64_t step_ = -1;
  bool setup_agreed_ = false;
  std::string flight_name_ = "control";
};

// A duplicate of MPI_COMM_WORLD (its own message space), CPU tensors. Requires comm_initialize().
// Collective (MPI_Comm_dup).
std::unique_ptr<Communicator> make_mpi_communicator();
// True when this build can create an NCCL communicator (CUDA LibTorch + NCCL compiled and linked).
bool nccl_available();
// NCCL over CUDA device `device_index`, the ncclUniqueId broadcast over MPI_COMM_WORLD (collective). The
// start-up is abandoned (communicator aborted, exception) after `timeout_seconds` (0: NCCL's own limits).
// Throws UserError when unavailable. Its PendingCollective::wait() orders the caller's CUDA stream after the
// collective without blocking the host; a watchdog thread aborts the communicator when a collective fails or
// outlives the timeout, and the next call on it throws CollectiveTimeout with the reason.
std::unique_ptr<Communicator> make_nccl_communicator(int device_index, double timeout_seconds);

// This process's place on its node, from MPI itself (MPI_Comm_split_type with MPI_COMM_TYPE_SHARED), so
// mpirun, srun and any other MPI launcher agree. Collective over MPI_COMM_WORLD. Requires comm_initialize().
struct NodePlacement {
  int local_rank = 0;  // rank among the processes on this node
  int local_size = 1;  // processes on this node
};
NodePlacement node_placement();

// Which communicator averages the gradients (distributed.backend). The control communicator (the launcher's
// MPI one: setup agreements, per-step flags, checkpoint broadcast, eval's gathers) always stays MPI on CPU
// tensors; the gradient communicator carries the gradient buckets, the start-up parameter broadcast and the
// BatchNorm averaging, on the model's device.
enum class GradientBackend { kMpi, kNccl };
const char* gradient_backend_name(GradientBackend backend);
// "mpi", "nccl", or "auto" (NCCL when the model is on a GPU and this build has NCCL, else MPI). Throws
// UserError naming distributed.backend for nccl without an NCCL build or without a GPU model, and for an
// unknown name.
GradientBackend choose_gradient_backend(const std::string& requested, bool model_on_gpu, bool nccl_built);
// (collective) every rank: the gradient communicator: NCCL on CUDA device `device_index`, or a second MPI
// communicator (its own MPI_Comm_dup, so gradient traffic never shares a message space with the control
// communicator's), with its collective timeout set to `timeout_seconds` (distributed.collective_timeout_s).
std::unique_ptr<Communicator> make_gradient_communicator(GradientBackend backend, int device_index,
                                                         double timeout_seconds);

// Scalar helpers over a communicator (collective).
double all_reduce_sum(Communicator& comm, double value);
double all_reduce_max(Communicator& comm, double value);
bool any_rank(Communicator& comm, bool flag);  // true on every rank when flag is true on any rank

// The reference that `facetrain bench allreduce` measures the communicators against: one blocking
// MPI_Allreduce over MPI_COMM_WORLD, in place, of a contiguous CPU tensor in a dtype all_reduce_sum_ takes
// (at most 2^30 elements); no timeout, no flight record. (collective) every rank; requires comm_initialize().
enum class ReduceOp { kSum, kMax };
void plain_mpi_all_reduce_(torch::Tensor& tensor, ReduceOp op);

}  // namespace facetrain
