// Data-parallel gradient averaging with communication overlapped with backward (like flashlight's Reducer
// and PyTorch DDP): gradients live in flat buckets, each bucket's all-reduce starts from an autograd hook as
// soon as its last gradient is ready. Plus the start-of-run parameter broadcast and buffer averaging.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "comm/communicator.h"

namespace torch {
namespace nn {
class Module;
}  // namespace nn
}  // namespace torch

namespace facetrain {

constexpr int64_t kDefaultBucketCapBytes = 25'000'000;      // 25 MB, as PyTorch DDP
constexpr int64_t kDefaultFirstBucketCapBytes = 1'000'000;  // 1 MB, as DDP's first bucket

// GradientBuckets: averages the gradients of `parameters` over the ranks of `comm`.
//
// Contract:
//  - Every rank constructs it with the same parameters (shapes, dtypes) in the same order. The constructor
//    makes no collective call (it runs inside setups that may still fail on one rank);
//    check_same_parameters_on_every_rank() compares the layouts once setup has been agreed on
//    (DataParallel::broadcast_state does it) and throws on every rank when a rank differs.
//  - Buckets are filled in REVERSE parameter order (gradients become ready roughly in that order during
//    backward) up to `bucket_cap_bytes` each, the first one up to `first_bucket_cap_bytes` (0: the same
//    cap); a parameter larger than the cap gets a bucket of its own; parameters of another dtype or device
//    start a new bucket. Parameters with requires_grad == false are not synchronised.
//  - Each parameter's .grad becomes a view into its bucket (the first time its gradient arrives), so
//    autograd accumulates straight into the bucket and no copy is needed in either direction. Code may
//    zero it (optimizer.zero_grad()), scale it (clip_grad_norm_) or reset it to undefined (then it is
//    copied in at the next backward). Do not keep .grad tensors across steps.
//  - With sync enabled, the backward pass launches each bucket's non-blocking all-reduce from the hooks,
//    in bucket order on every rank. finalize() MUST run after that backward and before optimizer.step():
//    it launches the buckets still waiting (a parameter that got no gradient contributes zeros), waits for
//    all of them, and leaves the average over ranks in every parameter's .grad. A parameter no rank
//    produced a gradient for this step gets an UNDEFINED .grad, as in single-process PyTorch, so optimizers
//    skip it (Adam's momentum and AdamW's decoupled weight decay do not move it). Each bucket carries one
//    "used" flag per parameter after its gradients, in the same all-reduce: no extra collective.
//  - Gradient accumulation: set_sync_enabled(false) for backward passes that must not communicate (the
//    earlier micro-batches, or a model's backward through another model's step); gradients then only
//    accumulate in .grad. The one backward with sync enabled before finalize() sends the accumulated sum.
//    A second gradient for a parameter after its bucket was marked ready is an error (throws).
//  - Threads: for CPU tensors the hooks run on the thread that calls backward; for CUDA tensors LibTorch's
//    autograd engine runs them on its worker thread for that device while the calling thread blocks in
//    backward(). Either way exactly one thread touches the buckets at a time, and backward()'s return orders
//    the hooks' writes before finalize() on the training thread, so no lock is needed. A hook launches a
//    collective on the current stream of the thread it runs on (autograd makes it the stream that produced
//    the gradient); the NCCL communicator calls no MPI from there. Do not call backward() from two threads
//    at once on the same buckets. With one rank the same code runs and the all-reduce is a no-op.
//  - The communicator and the parameters must outlive this object; destroying it removes its hooks.
class GradientBuckets {
 public:
  GradientBuckets(Communicator& comm, std::vector<torch::Tensor> parameters,
                  int64_t bucket_cap_bytes = kDefaultBucketCapBytes, std::string name = "gradient",
                  int64_t first_bucket_cap_bytes = 0);
  ~GradientBuckets();
  GradientBuckets(const GradientBuckets&) = delete;
  GradientBuckets& operator=(const GradientBuckets&) = delete;

  // (collective) every rank: throws on every rank, naming the ranks, when the parameter lists differ.
  void check_same_parameters_on_every_rank();

  void set_sync_enabled(bool enabled);
  bool sync_enabled() const;

  // (collective) every rank: see the contract above. Throws CollectiveTimeout after the communicator's
  // timeout, naming the bucket and the step.
  void finalize();

  // Zeroes every gradient before a step, in place: one fill per bucket, the .grad tensors stay the buckets'
  // views. (LibTorch 2.x's Optimizer::zero_grad() frees them, so every step autograd would allocate fresh
  // gradients and the hooks copy them into the buckets: twice the memory and one more pass.) A parameter left
  // without a gradient by finalize() keeps an undefined .grad.
  void zero_gradients();

  // Buckets, for tests and logs: indices into the constructor's parameter list in fill order, and bytes.
  int64_t bucket_count() const;
  std::vector<int64_t> bucket_parameters(int64_t bucket) const;
  int64_t bucket_bytes(int64_t bucket) const;
  // Buckets of the current step whose all-reduce started while gradients of other buckets were still to
  // come: the communication that overlapped the backward pass. Read it before finalize(). A model in one
  // bucket never overlaps: its all-reduce can only start with the last gradient.
  int64_t overlapped_buckets() const;

  // On a GPU (LibTorch 2.5 and later) finalize()'s waits are timed on the device: CUDA events on the compute
  // stream before and after them, since the host only queues the wait there. take_device_wait_seconds() is the
  // stall of the waits whose events have completed since the last call (never waits itself); false and 0 on a
  // CPU, where the host's clock around finalize() measures the wait.
  bool waits_timed_on_device() const;
  double take_device_wait_seconds();

  // Whether the hooks also test the launched buckets' requests. Open MPI progresses a non-blocking
  // collective only inside MPI calls, so without this an all-reduce launched early in backward moves
  // only when the next bucket launches or in finalize(). Default on; `facetrain bench allreduce
  // --overlap` measures both.
  void set_progress_in_hooks(bool enabled);

 private:
  struct State;
  std::shared_ptr<State> state_;  // shared with the hooks, which hold it weakly
};

// (collective) Copies root's values of `tensors` into every rank's tensors (coalesced per dtype).
void broadcast_tensors(Communicator& comm, const std::vector<torch::Tensor>& tensors, int root = 0);
// (collective) The module's parameters and buffers, from root: run once at start so every rank begins
// from the same weights whatever its initialisation.
void broadcast_module_state(Communicator& comm, torch::nn::Module& module, int root = 0);
// (collective) Replaces every floating-point tensor by its mean over ranks; other dtypes take rank 0's
// values. For BatchNorm running statistics (each rank updates them from its own shard): call it before
// evaluation and before a checkpoint so every rank holds the same model.
void average_tensors(Communicator& comm, const std::vector<torch::Tensor>& tensors);
void average_buffers(Communicator& comm, torch::nn::Module& module);

}  // namespace facetrain
