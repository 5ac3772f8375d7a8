// The one communication unit of facetrain: every MPI and NCCL call lives under trainer/comm/. Model code,
// training loops and eval call only this typed API (element count and dtype come from the tensor).
// Backends: MPI for CPU tensors (always), NCCL for CUDA tensors (compiled when CUDA + NCCL are found).
#pragma once

#include <torch/types.h>

#include <memory>
#include <string>
#include <vector>

namespace facetrain {

// --- process-wide MPI lifetime (called by launcher/ only) ---------------------------------------
// Initialises MPI (MPI_THREAD_FUNNELED). Safe when started without mpirun: a world of one.
void comm_initialize(int* argc, char*** argv);
void comm_finalize();
// Aborts every rank of the job (MPI_Abort) so no peer blocks in the next collective. Never returns.
[[noreturn]] void comm_abort(int exit_code);
bool comm_initialized();

// A started non-blocking collective. wait() completes it (throws CollectiveTimeout after the
// communicator's timeout, naming the operation).
class PendingCollective {
 public:
  virtual ~PendingCollective() = default;
  virtual void wait() = 0;
  virtual bool test() = 0;  // true when complete (no blocking)
};

// Collective: every rank must make the same calls in the same order with tensors of the same shape
// and dtype. With one rank every operation is a cheap no-op that runs the same code path.
class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  virtual std::string backend() const = 0;  // "mpi" | "nccl"

  // In-place sum over ranks. Contiguous tensors; float32/float64/int32/int64/uint8/bf16/fp16 (NCCL).
  virtual void all_reduce_sum_(torch::Tensor& tensor) = 0;
  virtual std::unique_ptr<PendingCollective> all_reduce_sum_async_(torch::Tensor& tensor) = 0;
  virtual void broadcast_(torch::Tensor& tensor, int root) = 0;
  // Concatenates every rank's tensor along dim 0; tensors may differ in dim 0 (sizes are exchanged).
  virtual torch::Tensor all_gather(const torch::Tensor& tensor) = 0;
  virtual void barrier() = 0;

  // Seconds a collective may wait before throwing CollectiveTimeout (0: forever).
  void set_timeout_seconds(double seconds) { timeout_seconds_ = seconds; }
  double timeout_seconds() const { return timeout_seconds_; }

 protected:
  double timeout_seconds_ = 0;
};

// MPI_COMM_WORLD, CPU tensors. Requires comm_initialize().
std::unique_ptr<Communicator> make_mpi_communicator();
// True when this build can create an NCCL communicator (CUDA LibTorch + NCCL compiled and linked).
bool nccl_available();
// NCCL over the local CUDA device, ncclUniqueId broadcast over MPI. Throws UserError when unavailable.
std::unique_ptr<Communicator> make_nccl_communicator(int device_index);

// Scalar helpers over a communicator (collective).
double all_reduce_sum(Communicator& comm, double value);
double all_reduce_max(Communicator& comm, double value);
bool any_rank(Communicator& comm, bool flag);  // true on every rank when flag is true on any rank

}  // namespace facetrain
