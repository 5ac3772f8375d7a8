// channels_last (NHWC) for a convolutional model: its 4-D weights and buffers are re-laid out in place (same
// tensors, so optimizers, gradient buckets and checkpoints keep them), and images are passed in the same
// layout, so every convolution of a training step runs NHWC (cuDNN's tensor cores and oneDNN prefer it; the
// outputs of a convolution on channels_last inputs stay channels_last). Values are unchanged: only the order
// in memory is (distributed.memory_format, trainer/device_math.h).
#pragma once

#include <torch/torch.h>

namespace facetrain {

// Every 4-D parameter and buffer of `module` (and its children) to channels_last, in place.
void to_channels_last(torch::nn::Module& module);

// `images` (N x C x H x W) laid out channels_last when `channels_last`, else as they are.
torch::Tensor in_memory_format(const torch::Tensor& images, bool channels_last);

}  // namespace facetrain
