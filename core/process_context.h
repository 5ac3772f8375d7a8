// Where this process runs: rank, local rank, host, device and thread count, decided once by the launcher
// and handed to every command that trains or evaluates. Holds the communicator (not owned).
#pragma once

#include <torch/types.h>

#include <sstream>
#include <string>

#include "comm/communicator.h"

namespace facetrain {

struct ProcessContext {
  Communicator* comm = nullptr;   // world communicator for CPU tensors (MPI); never null
  int rank = 0, world_size = 1;
  int local_rank = 0, local_size = 1;
  std::string host;
  torch::Device device = torch::kCPU;  // cuda:local_rank when LibTorch has CUDA and a GPU is visible
  int threads = 1;                     // LibTorch intra-op threads of this rank
};

// One start-up line per rank: host, rank, local rank, device, threads.
inline std::string describe(const ProcessContext& ctx) {
  std::ostringstream oss;
  oss << "host " << ctx.host << ", rank " << ctx.rank << "/" << ctx.world_size << ", local rank " << ctx.local_rank
      << "/" << ctx.local_size << ", device " << ctx.device.str() << ", threads " << ctx.threads;
  return oss.str();
}

// Sets the compute threads of this process: LibTorch's intra-op pool and, when the BLAS behind
// libblas.so.3 is OpenBLAS, its own thread pool too (LibTorch does not manage it, and unbound ranks would
// otherwise each start one OpenBLAS thread per core: oversubscription, and rank-count-dependent sums).
void set_compute_threads(int threads);

// A --threads value: N > 0 sets ctx.threads and the compute threads; 0 keeps the launcher's per-rank choice.
// Throws UserError for a negative value.
void apply_thread_flag(ProcessContext& ctx, int64_t threads);

}  // namespace facetrain
