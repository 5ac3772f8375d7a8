// Where this process runs: rank, local rank, host, device and thread count, decided once by the launcher
// (launcher/process.cpp) and handed to every command that trains or evaluates, with the job's control
// communicator (not owned).
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
  torch::Device device = torch::kCPU;  // its GPU when the job runs on GPUs (launcher/process.h choose_device)
  std::string device_description;      // a GPU's name, PCI bus id and memory; empty on the CPU
  int threads = 1;                     // LibTorch intra-op threads of this rank
  std::string cpu_cores;               // the cores this rank may run on ("0-3"), from its affinity mask
};

// One start-up line per rank: host, rank, local rank, device (with its GPU's name and PCI bus id), threads.
inline std::string describe(const ProcessContext& ctx) {
  std::ostringstream oss;
  oss << "host " << ctx.host << ", rank " << ctx.rank << "/" << ctx.world_size << ", local rank " << ctx.local_rank
      << "/" << ctx.local_size << ", device " << ctx.device.str();
  if (!ctx.device_description.empty()) oss << " (" << ctx.device_description << ")";
  oss << ", threads " << ctx.threads;
  if (!ctx.cpu_cores.empty()) oss << ", cores " << ctx.cpu_cores;
  return oss.str();
}

}  // namespace facetrain
