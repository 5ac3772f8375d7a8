// Small helpers shared by the models: truncated-normal initialisation (as torch.nn.init.trunc_normal_,
// which LibTorch 1.13 lacks) and parameter counting.
#pragma once

#include <cstdint>

#include <torch/types.h>

namespace torch::nn {
class Module;
}

namespace facetrain {

// Fills `t` in place (no autograd) from N(mean, std^2) truncated to [a, b] (the distribution of PyTorch's
// trunc_normal_, sampled by rejection). Draws from the global torch generator.
void trunc_normal_(torch::Tensor t, double mean, double std, double a, double b);

// Number of scalar parameters of `module` and all its submodules (buffers such as BatchNorm running
// statistics are not parameters and are not counted, as in PyTorch's sum(p.numel() for p in parameters())).
int64_t count_parameters(const torch::nn::Module& module);

}  // namespace facetrain
