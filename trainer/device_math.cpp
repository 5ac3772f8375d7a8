// apply_device_math (device_math.h): LibTorch's global context, set once before the model's first step.
#include "trainer/device_math.h"

#include <ATen/Context.h>

namespace facetrain {

std::string apply_device_math(const proto::DistributedConfig& c, bool on_gpu) {
  if (!on_gpu) return "fp32 matmuls in full precision (CPU; distributed.tf32 and cudnn_benchmark are GPU settings)";
  auto& context = at::globalContext();
  // "high" lets cuBLAS use TF32 for fp32 matmuls; "highest" keeps true FP32 (PyTorch's default since 1.12).
  context.setFloat32MatmulPrecision(c.tf32() ? "high" : "highest");
  context.setAllowTF32CuDNN(c.tf32());
  context.setBenchmarkCuDNN(c.cudnn_benchmark());
  std::string line = c.tf32() ? "TF32 matmuls and convolutions" : "true FP32 matmuls and convolutions (TF32 off)";
  line += c.cudnn_benchmark() ? ", cuDNN autotuner on" : ", cuDNN autotuner off";
  return line;
}

bool uses_channels_last(const proto::DistributedConfig& c, bool convolutional, bool on_gpu, std::string* why) {
  const std::string& format = c.memory_format();
  const bool channels_last = convolutional && (format == "channels_last" || (format == "auto" && on_gpu));
  if (why != nullptr) {
    *why = std::string(channels_last ? "channels_last" : "contiguous") +
           " weights and images (distributed.memory_format " + format +
           (convolutional ? "" : ": not a convolutional model") + ")";
  }
  return channels_last;
}

}  // namespace facetrain
