// What this rank knows of its GPUs: the ids of those visible to it (after CUDA_VISIBLE_DEVICES and any
// binding the launcher applied), what the start-up line says about one, and making one the current device.
// CUDA builds implement it in gpu_info_cuda.cpp, the others in gpu_info_none.cpp (no GPU is ever visible).
#pragma once

#include <string>
#include <vector>

namespace facetrain {

// The PCI bus ids ("0000:1b:00.0") of the GPUs this process sees, in CUDA's device order. A test seam:
// FACETRAIN_TEST_GPU_IDS="id,id,..." (or "" for none) replaces what the driver says, so placement's
// cross-rank checks run on machines without GPUs.
std::vector<std::string> visible_gpu_ids();

// "NVIDIA H100 80GB HBM3, PCI 0000:1b:00.0, 79.1 GiB" for CUDA device `index` (as numbered after
// CUDA_VISIBLE_DEVICES).
std::string describe_gpu(int index);

// Makes CUDA device `index` this process's current device, before any CUDA work (the per-step seeding,
// allocations before the model moves), so no rank opens a context on another rank's GPU.
void use_gpu(int index);

}  // namespace facetrain
