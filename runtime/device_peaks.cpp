// Device peaks (device_peaks.h): a GPU's matmul rate, getrusage for the host, the CUDA caching allocator's
// counters in CUDA builds (runtime/CMakeLists.txt defines FACETRAIN_TORCH_HAS_CUDA for them), the test seam.
#include "runtime/device_peaks.h"

#include <sys/resource.h>

#include <torch/cuda.h>
#include <torch/torch.h>

#include <algorithm>
#include <cstdlib>
#include <limits>
#include <sstream>

#ifdef FACETRAIN_TORCH_HAS_CUDA
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAFunctions.h>
#endif

#include "core/error.h"
#include "core/log.h"
#include "core/stopwatch.h"

namespace facetrain {
namespace {

constexpr double kMiB = 1024.0 * 1024.0;

// FACETRAIN_TEST_GPU_MEMORY="allocated_mb,reserved_mb,retries,total_mb" into `peaks`; false when unset.
bool gpu_memory_from_test_seam(MemoryPeaks* peaks) {
  const char* seam = std::getenv("FACETRAIN_TEST_GPU_MEMORY");
  if (seam == nullptr || *seam == '\0') return false;
  std::istringstream in(seam);
  char comma1 = 0, comma2 = 0, comma3 = 0;
  in >> peaks->gpu_allocated_mb >> comma1 >> peaks->gpu_reserved_mb >> comma2 >> peaks->gpu_alloc_retries >> comma3 >>
      peaks->gpu_total_mb;
  FT_CHECK(!in.fail() && comma1 == ',' && comma2 == ',' && comma3 == ',',
           "FACETRAIN_TEST_GPU_MEMORY '" << seam << "' is not allocated_mb,reserved_mb,retries,total_mb");
  peaks->gpu = true;
  return true;
}

}  // namespace

double measure_gpu_matmul_tflops(const torch::Device& device) {
  torch::NoGradGuard no_grad;
  constexpr int64_t n = 4096;
  const auto options = torch::TensorOptions().device(device).dtype(torch::kFloat32);
  auto a = torch::randn({n, n}, options), b = torch::randn({n, n}, options);
  auto c = torch::mm(a, b);  // warm-up: the cuBLAS handle, its workspace and kernel choice
  const int64_t index = device.has_index() ? device.index() : -1;
  torch::cuda::synchronize(index);
  double fastest = std::numeric_limits<double>::infinity();
  for (int i = 0; i < 8; ++i) {
    const auto t = Clock::now();
    torch::mm_out(c, a, b);
    torch::cuda::synchronize(index);
    fastest = std::min(fastest, seconds_since(t));
  }
  return 2.0 * n * n * n / fastest / 1e12;
}

MemoryPeaks memory_peaks(const torch::Device& device) {
  MemoryPeaks peaks;
  struct rusage usage {};
  getrusage(RUSAGE_SELF, &usage);
  peaks.host_mb = static_cast<double>(usage.ru_maxrss) / 1024.0;  // Linux: kilobytes
  if (gpu_memory_from_test_seam(&peaks)) return peaks;
#ifdef FACETRAIN_TORCH_HAS_CUDA
  if (device.is_cuda()) {
    const c10::DeviceIndex index = device.has_index() ? device.index() : c10::cuda::current_device();
    // Host-side counters under the allocator's lock: no synchronisation with the device.
    const auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(index);
    constexpr size_t kAggregate = 0;  // StatType::AGGREGATE: every pool together
    peaks.gpu = true;
    peaks.gpu_allocated_mb = static_cast<double>(stats.allocated_bytes[kAggregate].peak) / kMiB;
    peaks.gpu_reserved_mb = static_cast<double>(stats.reserved_bytes[kAggregate].peak) / kMiB;
    peaks.gpu_alloc_retries = stats.num_alloc_retries;
    peaks.gpu_total_mb = static_cast<double>(at::cuda::getDeviceProperties(index)->totalGlobalMem) / kMiB;
  }
#else
  (void)device;
#endif
  return peaks;
}

std::string describe(const MemoryPeaks& peaks) {
  const std::string host = "host peak " + fixed_decimals(peaks.host_mb, 0) + " MB";
  return peaks.gpu ? host + "; " + describe_gpu(peaks) : host;
}

std::string describe_gpu(const MemoryPeaks& peaks) {
  return "GPU peak " + fixed_decimals(peaks.gpu_allocated_mb / 1024, 2) + " GB allocated, " +
         fixed_decimals(peaks.gpu_reserved_mb / 1024, 2) + " GB reserved of " +
         fixed_decimals(peaks.gpu_total_mb / 1024, 2) + " GB, " + std::to_string(peaks.gpu_alloc_retries) +
         " allocator retr" + (peaks.gpu_alloc_retries == 1 ? "y" : "ies");
}

}  // namespace facetrain
