// Where this process runs: rank, local rank, host, device and thread count, decided once by the launcher
// (launcher/process.cpp) and handed to every command that trains or evaluates. Holds the communicator (not
// owned); include comm/communicator.h to use it.
#pragma once

#include <torch/types.h>

#include <sstream>
#include <string>

namespace facetrain {

class Communicator;  // comm/communicator.h

struct ProcessContext {
  Communicator* comm = nullptr;   // world communicator for CPU tensors (MPI); never null
  int rank = 0, world_size = 1;
  int local_rank = 0, local_size = 1;
  std::string host;
  torch::Device device = torch::kCPU;  // cuda:local_rank when LibTorch has CUDA and a GPU is visible
  std::string device_description;      // a GPU's name, PCI bus id and memory; empty on the CPU
  int threads = 1;                     // LibTorch intra-op threads of this rank
};

// One start-up line per rank: host, rank, local rank, device (with its GPU's name and PCI bus id), threads.
inline std::string describe(const ProcessContext& ctx) {
  std::ostringstream oss;
  oss << "host " << ctx.host << ", rank " << ctx.rank << "/" << ctx.world_size << ", local rank " << ctx.local_rank
      << "/" << ctx.local_size << ", device " << ctx.device.str();
  if (!ctx.device_description.empty()) oss << " (" << ctx.device_description << ")";
  oss << ", threads " << ctx.threads;
  return oss.str();
}

}  // namespace facetrain
