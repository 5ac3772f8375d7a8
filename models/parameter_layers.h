// Where each parameter of a model sits between its input and its output, for fine-tuning (which layers
// train, and layer-wise learning rates: trainer/trainable.h). Layer 0 is the stem (the ViT's patch and
// position embeddings), 1..blocks are the blocks in forward order, blocks + 1 is the head.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <vector>

namespace facetrain {

struct ParameterLayer {
  std::string name;  // the module's parameter name (named_parameters order)
  torch::Tensor parameter;
  int64_t layer = 0;  // 0 .. blocks + 1
  bool head = false;  // the output layer proper (the classifier), what "train: head" trains
};

struct ParameterLayers {
  int64_t blocks = 0;
  std::vector<ParameterLayer> parameters;
};

// ViT (models/vit.h names): cls_token, pos_embed, patch_embed.* -> 0; blocks.i.* -> i + 1; the final norm
// -> depth + 1 with the head, as timm's layer decay does (but not `head`: it trains with the last block);
// pre_logits.*, head.* -> depth + 1, head.
ParameterLayers vit_parameter_layers(const torch::nn::Module& vit, int64_t depth);

// VAE (models/vae.h names): encoder.i -> i + 1; conv_mu, conv_logvar -> the block after the encoder;
// decoder.j -> the blocks after that; conv_out -> the head. So "the last N blocks" are the last N decoder
// blocks (seed 004's "all but the last N decoder layers frozen").
ParameterLayers vae_parameter_layers(const torch::nn::Module& vae, int64_t encoder_blocks, int64_t decoder_blocks);

}  // namespace facetrain
