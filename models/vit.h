// Vision Transformer classifier: conv patch embedding, class token, learned position embeddings,
// pre-LayerNorm encoder blocks (fused-qkv multi-head self-attention, GELU MLP), final LayerNorm, linear head.
// Paper: A. Dosovitskiy et al., "An Image is Worth 16x16 Words: Transformers for Image Recognition at Scale",
// ICLR 2021 (arXiv:2010.11929). Parameter names follow timm's VisionTransformer (see the table below).
#pragma once

#include <cstdint>
#include <vector>

#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>
#include <torch/nn/pimpl.h>
#include <torch/types.h>

#include "models/capabilities.h"

namespace facetrain {

// What the head sees: the class token (ViT paper, HF, timm default), the mean of the patch tokens, or every
// token flattened to one (B, tokens*width) vector (what seed 001's two-layer head describes).
enum class VitPool { kCls, kMean, kFlatten };

struct VitOptions {
  int64_t image_size = 224;        // input height = width, pixels; must be a multiple of patch_size
  int64_t patch_size = 16;         // square patch side, pixels (conv kernel = stride)
  int64_t channels = 3;            // input channels
  int64_t num_classes = 2;         // head outputs (logits)
  int64_t width = 768;             // token dimension ("hidden size", d_model)
  int64_t depth = 12;              // encoder blocks
  int64_t heads = 12;              // attention heads; width % heads == 0
  double mlp_ratio = 4.0;          // MLP hidden = round(width * mlp_ratio)
  double dropout = 0.0;            // after position embedding, attention projection and in the MLP
  double attention_dropout = 0.0;  // on the attention weights
  double layer_norm_eps = 1e-6;    // timm uses 1e-6, Hugging Face ViT 1e-12
  bool qkv_bias = true;            // bias in the fused qkv projection
  VitPool pool = VitPool::kCls;
  int64_t head_hidden = 0;  // > 0: two-layer head pre_logits(Linear) -> GELU -> head(Linear), as seed 001
  // Convolutional stem before the patch embedding (Xiao et al., "Early Convolutions Help Transformers See
  // Better", NeurIPS 2021): one 3x3 stride-2 conv + GELU per entry, with that many output channels; the patch
  // embedding then runs on the reduced map. Empty: the plain ViT (and the only layout pretrained files have).
  std::vector<int64_t> stem_channels;

  int64_t stem_stride() const { return int64_t{1} << stem_channels.size(); }
  int64_t token_stride() const { return stem_stride() * patch_size; }  // image pixels per token side
  int64_t grid() const { return image_size / token_stride(); }         // patches per side
  int64_t num_patches() const { return grid() * grid(); }
  int64_t tokens() const { return num_patches() + 1; }  // patches + class token
  int64_t mlp_hidden() const;
  // Throws UserError naming the offending field (model.vit.<field>) when the options are inconsistent.
  void validate() const;
};

// Analytic forward FLOPs for one image (2 per multiply-add; GEMMs and attention matmuls only, elementwise
// ops such as LayerNorm/GELU/softmax ignored), counting every token through every block — the standard count
// that published GFLOP figures and the Python reference use. A training step is about 3x this per image.
double vit_flops_per_image(const VitOptions& options);
// FLOPs forward() actually performs: with kCls pooling the last block only computes the class-token row
// after attention (query, projection and MLP of one token), which gives identical logits for less work.
double vit_executed_flops_per_image(const VitOptions& options);

// Multi-head self-attention with one fused qkv projection (timm layout: qkv.weight is [3*width, width],
// rows ordered q, k, v, heads contiguous inside each). Input/output (B, T, width).
struct VitAttentionImpl : torch::nn::Module {
  VitAttentionImpl(int64_t width, int64_t heads, bool qkv_bias, double attention_dropout, double dropout);
  // x: (B, T, width). When `attention` is non-null it receives the softmax weights (B, heads, T, T) in
  // float32. When `cls_only` is true only the class token (row 0) is used as query: returns (B, 1, width).
  // Without `attention`, LibTorch 2.x builds use its fused scaled_dot_product_attention; with it (and in 1.13)
  // the explicit q k^T, softmax, weights v: the same outputs within float rounding (tests/models/vit_test.cpp).
  torch::Tensor forward(const torch::Tensor& x, torch::Tensor* attention = nullptr, bool cls_only = false);

  torch::nn::Linear qkv_;
  torch::nn::Linear proj_;
  int64_t heads_;
  double scale_;
  double attention_dropout_;
  double dropout_;
};
TORCH_MODULE(VitAttention);

struct VitMlpImpl : torch::nn::Module {
  VitMlpImpl(int64_t width, int64_t hidden, double dropout);
  torch::Tensor forward(const torch::Tensor& x);

  torch::nn::Linear fc1_;
  torch::nn::Linear fc2_;
  double dropout_;
};
TORCH_MODULE(VitMlp);

// Pre-LN block: x + attn(norm1(x)), then + mlp(norm2(.)).
struct VitBlockImpl : torch::nn::Module {
  VitBlockImpl(const VitOptions& options);
  torch::Tensor forward(const torch::Tensor& x, torch::Tensor* attention = nullptr, bool cls_only = false);

  torch::nn::LayerNorm norm1_;
  VitAttention attn_;
  torch::nn::LayerNorm norm2_;
  VitMlp mlp_;
};
TORCH_MODULE(VitBlock);

// Conv patch embedding: (B, C, H, W) -> (B, num_patches, width), patches in row-major order; after the
// optional convolutional stem (stem.N.{weight,bias}).
struct VitPatchEmbedImpl : torch::nn::Module {
  VitPatchEmbedImpl(const VitOptions& options);
  torch::Tensor forward(const torch::Tensor& x);

  torch::nn::ModuleList stem_list_;      // registered as "stem" when not empty
  std::vector<torch::nn::Conv2d> stem_;  // the same modules, typed
  torch::nn::Conv2d proj_;
};
TORCH_MODULE(VitPatchEmbed);

// logits (B, num_classes) and one (B, heads, T, T) float32 attention tensor per block, first block first.
using VitOutput = ClassifierAttention;

// Parameter names (= checkpoint / safetensors keys), chosen identical to timm's VisionTransformer state_dict
// keys so that timm files load by identity and exported files keep names other tools know:
//   cls_token [1,1,W]  pos_embed [1,T,W]  [patch_embed.stem.N.{weight,bias}]  patch_embed.proj.{weight,bias}
//   blocks.N.norm1.{weight,bias}  blocks.N.attn.qkv.{weight,bias}  blocks.N.attn.proj.{weight,bias}
//   blocks.N.norm2.{weight,bias}  blocks.N.mlp.fc1.{weight,bias}  blocks.N.mlp.fc2.{weight,bias}
//   norm.{weight,bias}  [pre_logits.{weight,bias}]  head.{weight,bias}
// Thread-safety: as any torch module (forward may run concurrently only in eval mode without dropout).
struct VitImpl : torch::nn::Module, ImageClassifier, AttentionSource {
  explicit VitImpl(const VitOptions& options = {});

  // ImageClassifier and AttentionSource (models/capabilities.h).
  torch::Tensor logits(const torch::Tensor& images) override { return forward(images); }
  int64_t num_classes() const override { return options_.num_classes; }
  ParameterLayers parameter_layers() override;
  double flops_per_image() const override { return vit_flops_per_image(options_); }
  std::string input_description() const override;
  int64_t patch_grid() const override { return options_.grid(); }
  int64_t attention_blocks() const override { return options_.depth; }
  int64_t attention_heads() const override { return options_.heads; }

  // images (B, channels, image_size, image_size) -> logits (B, num_classes).
  torch::Tensor forward(const torch::Tensor& images);
  // Same logits plus every block's attention weights (computes all rows of the last block).
  VitOutput forward_with_attention(const torch::Tensor& images) override;
  // Final-LayerNorm token features (B, T, width), class token first.
  torch::Tensor forward_features(const torch::Tensor& images);

  // Re-draws the head (and pre_logits) weights: used when a checkpoint's head does not fit num_classes.
  void reset_head();
  const VitOptions& options() const { return options_; }

  VitOptions options_;
  VitPatchEmbed patch_embed_;
  torch::Tensor cls_token_;
  torch::Tensor pos_embed_;
  torch::nn::ModuleList blocks_;
  torch::nn::LayerNorm norm_;
  torch::nn::Linear pre_logits_{nullptr};  // only when head_hidden > 0
  torch::nn::Linear head_;

 private:
  torch::Tensor embed(const torch::Tensor& images);
  torch::Tensor classify(const torch::Tensor& normed_tokens);
  std::vector<VitBlock> block_list_;  // the same modules as blocks_, typed
};
TORCH_MODULE(Vit);

}  // namespace facetrain
