// Model FLOPs counted from the operator shapes of one forward pass, as fvcore (timm's profile_fvcore) and
// PyTorch's FlopCounterMode count them: 2 FLOPs per multiply-add of every matrix product, convolution and
// attention; elementwise work (normalisation, activations, softmax, residual adds) is not counted. The shapes
// come from at::RecordFunction callbacks, so any module is counted as it really runs, in either LibTorch:
// the ViT's attention is two bmm in 1.13 and one scaled_dot_product_attention in 2.x, the same FLOPs.
#pragma once

#include <functional>

#include <torch/nn/module.h>

namespace facetrain {

struct FlopCount {
  double matmul = 0;       // mm, addmm, bmm, baddbmm, matmul, linear: 2 x output elements x inner dimension
  double convolution = 0;  // conv1d/2d/3d and their transposes: 2 x output (transposed: input) elements x
                           // the weight's elements per output (input) channel
  double attention = 0;    // scaled_dot_product_attention: its q k^T and weights v
  double total() const { return matmul + convolution + attention; }
};

// The FLOPs of the operators `run` calls on this thread. An operator inside a counted one (addmm inside
// linear, the kernels a convolution or fused attention dispatches to) is part of it and not counted again;
// work on other threads (LibTorch's intra-op pool) belongs to the operator that started it. Calls do not nest.
FlopCount count_flops(const std::function<void()>& run);

// count_flops of one forward of `module` (`forward` calls it): without autograd, with `module` and all its
// submodules in eval mode while it runs (BatchNorm's running statistics stay untouched, and batches of one
// image are allowed), each submodule's own mode restored afterwards. Eval mode changes no matrix shape in
// facetrain's models, only dropout and the VAE's sampling, which are elementwise.
FlopCount count_forward_flops(torch::nn::Module& module, const std::function<void()>& forward);

}  // namespace facetrain
