// Placement of this process: the node-local rank and node size from MPI itself (comm/communicator.h
// node_placement; the launcher's environment variables are only a cross-check), the device (one GPU per rank
// when LibTorch has CUDA and a GPU is visible), and the per-rank thread count (default: usable cores / ranks
// on this node).
#pragma once

#include <torch/types.h>

#include <string>
#include <vector>

#include "runtime/process_context.h"

namespace facetrain {

// Fills a ProcessContext for `comm`: gathers every rank's GPU view and chooses its device (choose_device),
// makes that GPU current, and applies the thread count to LibTorch (threads_override > 0 wins).
// (collective) every rank; a placement that cannot work is the same UserError on every rank.
ProcessContext place_process(Communicator& comm, int threads_override);

// What one rank sees: its host and the ids of the GPUs visible to it (gpu_info.h visible_gpu_ids), in CUDA's
// device order.
struct GpuView {
  std::string host;
  std::vector<std::string> gpus;
};

// The device of world rank `rank`, from every rank's view (index = world rank), for every way a cluster hands
// out GPUs:
//  - no rank sees a GPU: the CPU;
//  - the ranks of a node all see the same GPUs (mpirun on a workstation, srun --gpus-per-node): GPU
//    `local rank` (the rank's place among its node's ranks, by world rank, as MPI numbers them);
//  - the ranks of a node see different GPUs (srun --gpus-per-task=1, --gpu-bind=single:1, a per-rank
//    CUDA_VISIBLE_DEVICES): each its own GPU 0.
// Throws UserError (one line naming the host, the ranks and the counts) when some ranks see GPUs and others
// none, when a node runs more ranks than the GPUs it shares, or when two ranks would drive one GPU.
torch::Device choose_device(int rank, const std::vector<GpuView>& views);

}  // namespace facetrain
