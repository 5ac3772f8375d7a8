// Placement of this process: local rank/size from Open MPI or Slurm variables, the device (one GPU per rank
// when LibTorch has CUDA), and the per-rank thread count (default: usable cores / ranks on this node).
#pragma once

#include "core/process_context.h"

namespace facetrain {

// Fills a ProcessContext for `comm` and applies the thread count to LibTorch. threads_override > 0 wins.
ProcessContext place_process(Communicator& comm, int threads_override);

}  // namespace facetrain
