// The peaks of the device a rank runs on: the matmul rate a GPU reaches (what model FLOPs utilisation is
// measured against there; a CPU's is the start-up rate of runtime/blas_kernels.h, the CPU yardstick), and the
// memory high-water marks of this process: the host's resident set and, on a GPU, what LibTorch's CUDA caching
// allocator counts (peak bytes in tensors and held from the driver, and how often a device allocation failed
// and was retried after freeing the cache: a run close to running out). The memory is read in a few
// microseconds, with no device synchronisation: the perf/* scalars read it every log interval.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <string>

namespace facetrain {

struct MemoryPeaks {
  double host_mb = 0;  // peak resident set of this process (getrusage ru_maxrss), MiB
  // The GPU's, known for a CUDA device in a CUDA build, or when the test seam sets them.
  bool gpu = false;
  double gpu_allocated_mb = 0;    // peak bytes in live tensors, MiB
  double gpu_reserved_mb = 0;     // peak bytes the allocator held (tensors, its cache, fragmentation), MiB
  int64_t gpu_alloc_retries = 0;  // device allocations that failed, freed the cache and were retried
  double gpu_total_mb = 0;        // the device's memory, MiB
};

// The fp32 matmul rate of a GPU, TFLOP/s: the fastest of eight 4096^3 matmuls on `device` (a CUDA device),
// each waited for, with LibTorch's current TF32 setting (what the run's fp32 GEMMs use: distributed.tf32).
// Tens of milliseconds, at start-up.
double measure_gpu_matmul_tflops(const torch::Device& device);

// This process's memory peaks so far, the GPU's for `device` when it is a CUDA device. A test seam:
// FACETRAIN_TEST_GPU_MEMORY="allocated_mb,reserved_mb,retries,total_mb" stands for the allocator's figures on
// any device, so machines without a GPU run the code that reports them.
MemoryPeaks memory_peaks(const torch::Device& device);

// "host peak 812 MB" and, with GPU figures, "; " and describe_gpu's.
std::string describe(const MemoryPeaks& peaks);
// "GPU peak 70.10 GB allocated, 75.20 GB reserved of 79.10 GB, 3 allocator retries" (GB: 1024 MB).
std::string describe_gpu(const MemoryPeaks& peaks);

}  // namespace facetrain
