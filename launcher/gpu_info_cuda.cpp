// describe_gpu for CUDA builds (launcher/CMakeLists.txt picks this file or gpu_info_none.cpp).
#include <ATen/cuda/CUDAContext.h>

#include <cstdio>

#include "launcher/gpu_info.h"

namespace facetrain {

std::string describe_gpu(int index) {
  const cudaDeviceProp* p = at::cuda::getDeviceProperties(index);
  char bus[32];
  std::snprintf(bus, sizeof(bus), "%04x:%02x:%02x.0", p->pciDomainID, p->pciBusID, p->pciDeviceID);
  char memory[32];
  std::snprintf(memory, sizeof(memory), "%.1f GiB", static_cast<double>(p->totalGlobalMem) / (1ull << 30));
  return std::string(p->name) + ", PCI " + bus + ", " + memory;
}

}  // namespace facetrain
