// The bandwidth of the gradient-sync path (GradientBuckets: autograd hooks, bucket views, pre-division,
// MPI_Iallreduce, wait) against a plain blocking MPI_Allreduce of the same bytes, and optionally how much
// of the communication a real backward pass hides. The measurement behind `facetrain bench allreduce`.
#pragma once

#include <cstdint>
#include <string>

namespace facetrain {

struct AllreduceBenchOptions {
  int64_t min_bytes = 1024;       // smallest message
  int64_t max_bytes = 100000000;  // largest message (always measured)
  int64_t factor = 4;             // growth between sizes
  int reps = 0;                   // repetitions per size (0: about 1.5 s of work per size, 7..301)
  int64_t param_bytes = 1000000;  // synthetic parameters are float32 tensors of at most this size
  double bucket_cap_mb = 25;      // gradient bucket cap
  int threads = 1;                // LibTorch threads per rank (set by the caller; printed here)
  int overlap_steps = 0;          // > 0: also measure exposed communication of an MLP step, this many steps
  // "mpi": the gradient-sync path against MPI_Allreduce (above). "nccl": the NCCL communicator the trainer
  // uses on GPUs, all-reduces of float32 on each rank's GPU (`device`), nccl-tests' all_reduce_perf table.
  std::string backend = "mpi";
  int device_index = 0;  // the rank's CUDA device (launcher/process.h choose_device), for "nccl"
};

// (collective) every rank, after the command's setup agreement. Rank 0 prints the table.
void run_allreduce_bench(const AllreduceBenchOptions& options);

}  // namespace facetrain
