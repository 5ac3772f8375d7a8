// What callers ask of a model instead of its kind: a classifier, an attention source, a generator, an
// autoencoder. A network implements the ones it offers beside torch::nn::Module (VitImpl is an
// ImageClassifier and an AttentionSource); a model's spec (models/model_spec.h) names the module that
// offers them, so eval and the trainer reach any model through these interfaces and never switch on kinds.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "models/parameter_layers.h"

namespace facetrain {

// Images -> class logits.
class ImageClassifier {
 public:
  virtual ~ImageClassifier() = default;
  // (B, channels, H, W) normalized images -> (B, num_classes()) logits.
  virtual torch::Tensor logits(const torch::Tensor& images) = 0;
  virtual int64_t num_classes() const = 0;
  // Stem, blocks and head of every parameter, for fine-tuning (trainer/trainable.h).
  virtual ParameterLayers parameter_layers() = 0;
  // Forward FLOPs for one image (2 per multiply-add), for utilisation figures.
  virtual double flops_per_image() const = 0;
  // What the input becomes inside, for the log ("17 tokens per image").
  virtual std::string input_description() const = 0;
};

// A classifier's logits with its attention weights (models/vit.h: one (B, heads, T, T) tensor per block, first
// block first; token 0 is the class token, then the patches row by row).
struct ClassifierAttention {
  torch::Tensor logits;
  std::vector<torch::Tensor> attention;
};

// A classifier whose attention over image patches can be read (eval attention).
class AttentionSource {
 public:
  virtual ~AttentionSource() = default;
  virtual ClassifierAttention forward_with_attention(const torch::Tensor& images) = 0;
  virtual int64_t patch_grid() const = 0;        // patches per image side
  virtual int64_t attention_blocks() const = 0;  // attention maps per image
  virtual int64_t attention_heads() const = 0;   // heads per map
};

// Latent vectors -> images in [-1, 1] (eval samples).
class ImageGenerator {
 public:
  virtual ~ImageGenerator() = default;
  virtual torch::Tensor generate(const torch::Tensor& z) = 0;  // (B, latent_size()) -> (B, C, H, W)
  virtual int64_t latent_size() const = 0;
};

// Images -> latents -> images (eval morph).
class ImageAutoencoder {
 public:
  virtual ~ImageAutoencoder() = default;
  virtual torch::Tensor encode_mean(const torch::Tensor& images) = 0;  // (B, C, H, W) -> (B, latent_size())
  virtual torch::Tensor decode(const torch::Tensor& z) = 0;            // (B, latent_size()) -> images
  virtual int64_t latent_size() const = 0;
  virtual std::pair<float, float> output_range() const = 0;  // the decoder's pixel range
};

}  // namespace facetrain
