// to_channels_last (memory_format.h).
#include "models/memory_format.h"

namespace facetrain {

void to_channels_last(torch::nn::Module& module) {
  torch::NoGradGuard no_grad;
  auto relayout = [](torch::Tensor& t) {
    // set_data keeps the tensor (its identity, requires_grad, autograd accumulator) and swaps its storage.
    if (t.defined() && t.dim() == 4) t.set_data(t.contiguous(torch::MemoryFormat::ChannelsLast));
  };
  for (auto& p : module.parameters()) relayout(p);
  for (auto& b : module.buffers()) relayout(b);
}

torch::Tensor in_memory_format(const torch::Tensor& images, bool channels_last) {
  return channels_last && images.dim() == 4 ? images.contiguous(torch::MemoryFormat::ChannelsLast) : images;
}

}  // namespace facetrain
