// gpu_info.h for CUDA builds (launcher/CMakeLists.txt picks this file or gpu_info_none.cpp).
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAFunctions.h>
#include <torch/cuda.h>

#include <cstdio>

#include "launcher/gpu_info.h"

namespace facetrain {

std::vector<std::string> test_gpu_ids_or(std::vector<std::string> (*probe)());

namespace {

std::string bus_id(const cudaDeviceProp& p) {
  char bus[32];
  std::snprintf(bus, sizeof(bus), "%04x:%02x:%02x.0", p.pciDomainID, p.pciBusID, p.pciDeviceID);
  return bus;
}

}  // namespace

std::vector<std::string> visible_gpu_ids() {
  return test_gpu_ids_or([] {
    std::vector<std::string> ids;
    const int count = torch::cuda::is_available() ? static_cast<int>(torch::cuda::device_count()) : 0;
    for (int i = 0; i < count; ++i) ids.push_back(bus_id(*at::cuda::getDeviceProperties(i)));
    return ids;
  });
}

std::string describe_gpu(int index) {
  const cudaDeviceProp* p = at::cuda::getDeviceProperties(index);
  char memory[32];
  std::snprintf(memory, sizeof(memory), "%.1f GiB", static_cast<double>(p->totalGlobalMem) / (1ull << 30));
  return std::string(p->name) + ", PCI " + bus_id(*p) + ", " + memory;
}

void use_gpu(int index) { c10::cuda::set_device(static_cast<c10::DeviceIndex>(index)); }

}  // namespace facetrain
