// Where this process runs: rank, local rank, host, device and thread count, decided once by the launcher
// (launcher/process.cpp) and handed to every command that trains or evaluates, with the job's control
// communicator (not owned), the BLAS kernels it runs and the matmul rates it measured at start-up.
#pragma once

#include <torch/types.h>

#include <sstream>
#include <string>

#include "comm/communicator.h"
#include "runtime/blas_kernels.h"

namespace facetrain {

struct ProcessContext {
  Communicator* comm = nullptr;  // world communicator for CPU tensors (MPI); never null
  int rank = 0, world_size = 1;
  int local_rank = 0, local_size = 1;
  std::string host;
  torch::Device device = torch::kCPU;  // its GPU when the job runs on GPUs (launcher/process.h choose_device)
  std::string device_description;      // a GPU's name, PCI bus id and memory; empty on the CPU
  int threads = 1;                     // LibTorch intra-op threads of this rank
  std::string cpu_cores;               // the cores this rank may run on ("0-3"), from its affinity mask
  BlasKernels blas;                    // the BLAS under LibTorch, its kernels and how they were chosen
  MatmulRates matmul;                  // measured once the thread count is final (launcher/threads.h)
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

// The start-up line after it, per rank: what the rank's arithmetic runs on and how fast, measured.
// "cpu AMD EPYC (avx2 fma), blas OpenBLAS 0.3.21, Zen kernels (OpenBLAS's choice), matmul 256^3 on 1 thread: ..."
inline std::string describe_compute(const ProcessContext& ctx) {
  const CpuFeatures cpu = cpu_features();
  return "cpu " + cpu.name + " (" + cpu.flags() + "), blas " + describe(ctx.blas) + ", " + describe(ctx.matmul);
}

}  // namespace facetrain
