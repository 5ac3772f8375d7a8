// gpu_info.h for builds whose LibTorch has no CUDA: no GPU is visible (unless a test says otherwise), and
// placing a rank on one is an error.
#include <cstdlib>

#include "core/error.h"
#include "launcher/gpu_info.h"

namespace facetrain {

std::vector<std::string> test_gpu_ids_or(std::vector<std::string> (*probe)());

std::vector<std::string> visible_gpu_ids() {
  return test_gpu_ids_or([] { return std::vector<std::string>(); });
}

std::string describe_gpu(int index) { return "CUDA device " + std::to_string(index); }

void use_gpu(int index) {
  throw UserError("this facetrain is built against a LibTorch without CUDA, so it cannot use GPU " +
                  std::to_string(index) + " (docs/gpu.md: the GPU build)");
}

}  // namespace facetrain
