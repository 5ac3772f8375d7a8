// describe_gpu for builds whose LibTorch has no CUDA: never called there (no rank is placed on a GPU).
#include "launcher/gpu_info.h"

namespace facetrain {

std::string describe_gpu(int index) { return "CUDA device " + std::to_string(index); }

}  // namespace facetrain
