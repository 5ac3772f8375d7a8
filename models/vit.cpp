// Vision Transformer classifier (see vit.h): modules, forward passes and the analytic FLOP count.
#include "models/vit.h"

#include <cmath>

#include <torch/torch.h>
#include <torch/version.h>

#include "core/error.h"
#include "models/init.h"

namespace facetrain {
namespace {

namespace F = torch::nn::functional;

// Hugging Face's ViTPreTrainedModel init (truncated normal, std 0.02) for weights; zero biases.
void init_linear(torch::nn::Linear& linear) {
  trunc_normal_(linear->weight, 0.0, 0.02, -0.04, 0.04);
  if (linear->bias.defined()) {
    torch::NoGradGuard no_grad;
    linear->bias.zero_();
  }
}

torch::Tensor maybe_dropout(const torch::Tensor& x, double p, bool training) {
  // Skipping the call when p == 0 avoids an allocation and a pass over the tensor per use.
  if (p <= 0.0 || !training) return x;
  return F::dropout(x, F::DropoutFuncOptions().p(p).training(true));
}

// y = x W^T + b on the trailing dimension of a (..., in) tensor as one 2-D addmm (bias fused into the GEMM),
// whatever LibTorch's linear() does with 3-D inputs.
torch::Tensor affine(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias) {
  const auto in = x.size(-1);
  auto sizes = x.sizes().vec();
  auto x2 = x.reshape({-1, in});
  auto y = bias.defined() ? torch::addmm(bias, x2, weight.t()) : torch::mm(x2, weight.t());
  sizes.back() = y.size(1);
  return y.view(sizes);
}

torch::Tensor linear_2d(const torch::nn::Linear& linear, const torch::Tensor& x) {
  return affine(x, linear->weight, linear->bias);
}

}  // namespace

int64_t VitOptions::mlp_hidden() const {
  return static_cast<int64_t>(std::llround(static_cast<double>(width) * mlp_ratio));
}

void VitOptions::validate() const {
  FT_USER_CHECK(image_size > 0, "model.vit.image_size must be positive, got " << image_size);
  FT_USER_CHECK(patch_size > 0, "model.vit.patch_size must be positive, got " << patch_size);
  for (int64_t c : stem_channels) FT_USER_CHECK(c > 0, "model.vit.stem_channels must be positive, got " << c);
  FT_USER_CHECK(image_size % token_stride() == 0,
                "model.vit.image_size (" << image_size << ") must be a multiple of model.vit.patch_size (" << patch_size
                                         << ") x the stem's stride (" << stem_stride() << ")");
  FT_USER_CHECK(channels > 0, "model.vit.channels must be positive, got " << channels);
  FT_USER_CHECK(num_classes > 0, "model.vit.num_classes must be positive, got " << num_classes);
  FT_USER_CHECK(width > 0 && heads > 0 && width % heads == 0,
                "model.vit.width (" << width << ") must be a positive multiple of model.vit.heads (" << heads << ")");
  FT_USER_CHECK(depth > 0, "model.vit.depth must be positive, got " << depth);
  FT_USER_CHECK(mlp_ratio > 0 && mlp_hidden() > 0, "model.vit.mlp_ratio must be positive, got " << mlp_ratio);
  FT_USER_CHECK(dropout >= 0 && dropout < 1, "model.vit.dropout must be in [0, 1), got " << dropout);
  FT_USER_CHECK(attention_dropout >= 0 && attention_dropout < 1,
                "model.vit.attention_dropout must be in [0, 1), got " << attention_dropout);
  FT_USER_CHECK(layer_norm_eps > 0, "model.vit.layer_norm_eps must be positive, got " << layer_norm_eps);
  FT_USER_CHECK(head_hidden >= 0, "model.vit.head_hidden must be >= 0, got " << head_hidden);
}

namespace {
// Forward FLOPs of one block for `rows_after_attention` query rows out of `t` tokens.
double block_flops(const VitOptions& o, double t, double rows) {
  const double w = static_cast<double>(o.width);
  const double h = static_cast<double>(o.mlp_hidden());
  double macs = 0;
  macs += t * w * 2 * w;           // k, v projections (all tokens)
  macs += rows * w * w;            // q projection
  macs += rows * t * w;            // q k^T   (all heads together: width = heads * head_dim)
  macs += rows * t * w;            // attn v
  macs += rows * w * w;            // output projection
  macs += rows * (w * h + h * w);  // MLP
  return 2.0 * macs;
}

double head_flops(const VitOptions& o) {
  const double w = static_cast<double>(o.width);
  double in = w;
  if (o.pool == VitPool::kFlatten) in = w * static_cast<double>(o.tokens());
  double macs = 0;
  if (o.head_hidden > 0) {
    macs += in * static_cast<double>(o.head_hidden);
    in = static_cast<double>(o.head_hidden);
  }
  macs += in * static_cast<double>(o.num_classes);
  return 2.0 * macs;
}

double patch_flops(const VitOptions& o) {
  double macs = 0;
  int64_t in = o.channels, side = o.image_size;
  for (int64_t c : o.stem_channels) {  // 3x3 stride-2 convs
    side /= 2;
    macs += static_cast<double>(side * side) * static_cast<double>(in * 9 * c);
    in = c;
  }
  macs += static_cast<double>(o.num_patches()) * static_cast<double>(in * o.patch_size * o.patch_size) *
          static_cast<double>(o.width);
  return 2.0 * macs;
}
}  // namespace

double vit_flops_per_image(const VitOptions& o) {
  const double t = static_cast<double>(o.tokens());
  return patch_flops(o) + static_cast<double>(o.depth) * block_flops(o, t, t) + head_flops(o);
}

double vit_executed_flops_per_image(const VitOptions& o) {
  if (o.pool != VitPool::kCls) return vit_flops_per_image(o);
  const double t = static_cast<double>(o.tokens());
  return patch_flops(o) + static_cast<double>(o.depth - 1) * block_flops(o, t, t) + block_flops(o, t, 1.0) +
         head_flops(o);
}

// ---------------------------------------------------------------------------------------------------------

VitAttentionImpl::VitAttentionImpl(int64_t width, int64_t heads, bool qkv_bias, double attention_dropout,
                                   double dropout)
    : qkv_(torch::nn::LinearOptions(width, 3 * width).bias(qkv_bias)),
      proj_(torch::nn::LinearOptions(width, width)),
      heads_(heads),
      scale_(1.0 / std::sqrt(static_cast<double>(width / heads))),
      attention_dropout_(attention_dropout),
      dropout_(dropout) {
  register_module("qkv", qkv_);
  register_module("proj", proj_);
  init_linear(qkv_);
  init_linear(proj_);
}

torch::Tensor VitAttentionImpl::forward(const torch::Tensor& x, torch::Tensor* attention, bool cls_only) {
  const int64_t b = x.size(0), t = x.size(1), w = x.size(2);
  const int64_t hd = w / heads_;
  const int64_t bh = b * heads_;
  // One GEMM for q, k and v; then one copy into (3, B*heads, T, head_dim) so that every batched matmul below
  // reads contiguous matrices (bmm needs a single batch stride; the (B, heads) pair has none in this layout).
  torch::Tensor q, k, v;
  if (!cls_only) {
    auto qkv = linear_2d(qkv_, x).view({b, t, 3, heads_, hd}).permute({2, 0, 3, 1, 4}).reshape({3, bh, t, hd});
    // unbind, not qkv[0..2]: select's backward allocates a zero tensor of the full qkv size per part and sums
    // three of them (measured ~6% of a ViT step); unbind's backward is one stack.
    auto parts = qkv.unbind(0);
    q = parts[0], k = parts[1], v = parts[2];
  } else {
    // Class-token query only: k, v for every token, q for row 0 (rows 0..w-1 of the fused weight are q).
    const auto& weight = qkv_->weight;
    const auto& bias = qkv_->bias;
    auto kv = affine(x, weight.narrow(0, w, 2 * w), bias.defined() ? bias.narrow(0, w, 2 * w) : bias)
                  .view({b, t, 2, heads_, hd})
                  .permute({2, 0, 3, 1, 4})
                  .reshape({2, bh, t, hd});
    auto parts = kv.unbind(0);
    k = parts[0], v = parts[1];
    q = affine(x.select(1, 0), weight.narrow(0, 0, w), bias.defined() ? bias.narrow(0, 0, w) : bias).view({bh, 1, hd});
  }
  const int64_t rows = q.size(1);
#if TORCH_VERSION_MAJOR >= 2
  // LibTorch 2.x: the fused kernel (flash / memory-efficient on GPUs, a blocked one on CPUs), which computes the
  // softmax in float32 under fp16/bf16 as the path below does. The path below stays for attention maps (the
  // weights themselves are wanted) and for 1.13, which has no such kernel.
  if (attention == nullptr) {
    auto out = at::scaled_dot_product_attention(q, k, v, {}, is_training() ? attention_dropout_ : 0.0, false, scale_);
    out = out.view({b, heads_, rows, hd}).transpose(1, 2).reshape({b, rows, w});
    return maybe_dropout(linear_2d(proj_, out), dropout_, is_training());
  }
#endif

  // scores = scale * q k^T. (Not baddbmm(empty, .., beta=0, alpha=scale): LibTorch 1.13's CPU kernel for small
  // batches reads the uninitialised input and propagated NaN from it.) bmm does not keep its output for
  // backward, so the scaling can be in place.
  auto scores = torch::bmm(q, k.transpose(1, 2)).mul_(scale_);
  // Softmax in float32 even under fp16/bf16 autocast: half-precision scores of long sequences overflow
  // (max 65504) or lose the small weights, which turns ViT attention into NaN/one-hot (a known fp16 failure).
  auto weights = torch::softmax(scores, -1, torch::kFloat);
  if (attention != nullptr) *attention = weights.view({b, heads_, rows, t});
  weights = maybe_dropout(weights, attention_dropout_, is_training());
  auto out = torch::bmm(weights.to(v.scalar_type()), v);  // (B*heads, rows, head_dim)
  out = out.view({b, heads_, rows, hd}).transpose(1, 2).reshape({b, rows, w});
  return maybe_dropout(linear_2d(proj_, out), dropout_, is_training());
}

VitMlpImpl::VitMlpImpl(int64_t width, int64_t hidden, double dropout)
    : fc1_(torch::nn::LinearOptions(width, hidden)), fc2_(torch::nn::LinearOptions(hidden, width)), dropout_(dropout) {
  register_module("fc1", fc1_);
  register_module("fc2", fc2_);
  init_linear(fc1_);
  init_linear(fc2_);
}

torch::Tensor VitMlpImpl::forward(const torch::Tensor& x) {
  auto h = maybe_dropout(torch::gelu(linear_2d(fc1_, x)), dropout_, is_training());
  return maybe_dropout(linear_2d(fc2_, h), dropout_, is_training());
}

VitBlockImpl::VitBlockImpl(const VitOptions& o)
    : norm1_(torch::nn::LayerNormOptions({o.width}).eps(o.layer_norm_eps)),
      attn_(o.width, o.heads, o.qkv_bias, o.attention_dropout, o.dropout),
      norm2_(torch::nn::LayerNormOptions({o.width}).eps(o.layer_norm_eps)),
      mlp_(o.width, o.mlp_hidden(), o.dropout) {
  register_module("norm1", norm1_);
  register_module("attn", attn_);
  register_module("norm2", norm2_);
  register_module("mlp", mlp_);
}

torch::Tensor VitBlockImpl::forward(const torch::Tensor& x, torch::Tensor* attention, bool cls_only) {
  auto residual = cls_only ? x.narrow(1, 0, 1) : x;
  auto h = residual + attn_(norm1_(x), attention, cls_only);
  return h + mlp_(norm2_(h));
}

VitPatchEmbedImpl::VitPatchEmbedImpl(const VitOptions& o)
    : proj_(
          torch::nn::Conv2dOptions(o.stem_channels.empty() ? o.channels : o.stem_channels.back(), o.width, o.patch_size)
              .stride(o.patch_size)) {
  int64_t in = o.channels;
  for (size_t i = 0; i < o.stem_channels.size(); ++i) {
    // LibTorch's default (Kaiming-uniform) init, as torch.nn.Conv2d; no normalisation layer, so no buffers
    // to keep equal across ranks.
    torch::nn::Conv2d conv(torch::nn::Conv2dOptions(in, o.stem_channels[i], 3).stride(2).padding(1));
    stem_list_->push_back(conv);
    stem_.push_back(conv);
    in = o.stem_channels[i];
  }
  if (!stem_.empty()) register_module("stem", stem_list_);
  register_module("proj", proj_);
  trunc_normal_(proj_->weight, 0.0, 0.02, -0.04, 0.04);
  torch::NoGradGuard no_grad;
  proj_->bias.zero_();
}

torch::Tensor VitPatchEmbedImpl::forward(const torch::Tensor& x) {
  torch::Tensor h = x;
  for (auto& conv : stem_) h = torch::gelu(conv(h));
  return proj_(h).flatten(2).transpose(1, 2);  // (B, width, g, g) -> (B, g*g, width)
}

// ---------------------------------------------------------------------------------------------------------

VitImpl::VitImpl(const VitOptions& options)
    : options_((options.validate(), options)),
      patch_embed_(options),
      blocks_(),
      norm_(torch::nn::LayerNormOptions({options.width}).eps(options.layer_norm_eps)),
      head_(torch::nn::LinearOptions(options.head_hidden > 0             ? options.head_hidden
                                     : options.pool == VitPool::kFlatten ? options.width * options.tokens()
                                                                         : options.width,
                                     options.num_classes)) {
  const auto& o = options_;
  register_module("patch_embed", patch_embed_);
  cls_token_ = register_parameter("cls_token", torch::zeros({1, 1, o.width}));
  pos_embed_ = register_parameter("pos_embed", torch::zeros({1, o.tokens(), o.width}));
  trunc_normal_(cls_token_, 0.0, 0.02, -0.04, 0.04);
  trunc_normal_(pos_embed_, 0.0, 0.02, -0.04, 0.04);
  for (int64_t i = 0; i < o.depth; ++i) {
    VitBlock block(o);
    blocks_->push_back(block);
    block_list_.push_back(block);
  }
  register_module("blocks", blocks_);
  register_module("norm", norm_);
  if (o.head_hidden > 0) {
    const int64_t in = o.pool == VitPool::kFlatten ? o.width * o.tokens() : o.width;
    pre_logits_ = torch::nn::Linear(torch::nn::LinearOptions(in, o.head_hidden));
    register_module("pre_logits", pre_logits_);
  }
  register_module("head", head_);
  reset_head();
}

void VitImpl::reset_head() {
  if (pre_logits_) init_linear(pre_logits_);
  init_linear(head_);
}

torch::Tensor VitImpl::embed(const torch::Tensor& images) {
  const auto& o = options_;
  FT_USER_CHECK(images.dim() == 4 && images.size(1) == o.channels && images.size(2) == o.image_size &&
                    images.size(3) == o.image_size,
                "ViT expects images of shape (B, " << o.channels << ", " << o.image_size << ", " << o.image_size
                                                   << ") (model.vit.channels / image_size), got " << images.sizes());
  auto patches = patch_embed_(images);
  auto tokens = torch::cat({cls_token_.expand({images.size(0), 1, o.width}).to(patches.scalar_type()), patches}, 1);
  tokens = tokens + pos_embed_;
  return maybe_dropout(tokens, o.dropout, is_training());
}

torch::Tensor VitImpl::classify(const torch::Tensor& normed) {
  torch::Tensor pooled;
  switch (options_.pool) {
    case VitPool::kCls: pooled = normed.select(1, 0); break;
    case VitPool::kMean: pooled = normed.narrow(1, 1, normed.size(1) - 1).mean(1); break;
    case VitPool::kFlatten: pooled = normed.flatten(1); break;
  }
  if (pre_logits_) pooled = torch::gelu(pre_logits_(pooled));
  return head_(pooled);
}

torch::Tensor VitImpl::forward(const torch::Tensor& images) {
  auto x = embed(images);
  const bool cls_only = options_.pool == VitPool::kCls;
  const int64_t last = static_cast<int64_t>(block_list_.size()) - 1;
  for (int64_t i = 0; i <= last; ++i) {
    // With class-token pooling the last block's outputs for patch tokens are never read: computing only
    // row 0 after attention is exact and saves the query/projection/MLP work of T-1 tokens in that block.
    x = block_list_[i]->forward(x, nullptr, cls_only && i == last);
  }
  return classify(norm_(x));
}

VitOutput VitImpl::forward_with_attention(const torch::Tensor& images) {
  VitOutput out;
  auto x = embed(images);
  out.attention.resize(block_list_.size());
  for (size_t i = 0; i < block_list_.size(); ++i) x = block_list_[i]->forward(x, &out.attention[i]);
  out.logits = classify(norm_(x));
  return out;
}

torch::Tensor VitImpl::forward_features(const torch::Tensor& images) {
  auto x = embed(images);
  for (auto& block : block_list_) x = block->forward(x);
  return norm_(x);
}

ParameterLayers VitImpl::parameter_layers() { return vit_parameter_layers(*this, options_.depth); }

std::string VitImpl::input_description() const { return std::to_string(options_.tokens()) + " tokens per image"; }

}  // namespace facetrain
