// What the start-up line says about a rank's GPU: name, PCI bus id and memory, so a user can match ranks to
// physical cards (nvidia-smi lists the same bus ids). CUDA builds only; a CPU build never places a rank on
// a GPU.
#pragma once

#include <string>

namespace facetrain {

// "NVIDIA H100 80GB HBM3, PCI 0000:1b:00.0, 79.1 GiB" for CUDA device `index` (as numbered after
// CUDA_VISIBLE_DEVICES).
std::string describe_gpu(int index);

}  // namespace facetrain
