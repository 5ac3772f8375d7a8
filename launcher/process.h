// Placement of this process: the node-local rank and node size from MPI itself (comm/communicator.h
// node_placement; the launcher's environment variables are only a cross-check), the device (one GPU per rank
// when LibTorch has CUDA and a GPU is visible), and the per-rank thread count (default: usable cores / ranks
// on this node).
#pragma once

#include <torch/types.h>

#include <string>

#include "runtime/process_context.h"

namespace facetrain {

// Fills a ProcessContext for `comm` and applies the thread count to LibTorch. threads_override > 0 wins.
// (collective) every rank. Throws UserError when a node has more ranks than visible GPUs.
ProcessContext place_process(Communicator& comm, int threads_override);

// The device of node-local rank `local_rank` of `local_size` ranks on `host` with `visible_gpus` CUDA devices
// (after CUDA_VISIBLE_DEVICES): the CPU without GPUs, else GPU `local_rank`. Throws UserError naming the host
// and the counts when there are fewer GPUs than ranks (NCCL cannot put two ranks on one GPU).
torch::Device choose_device(int local_rank, int local_size, int visible_gpus, const std::string& host);

}  // namespace facetrain
