// ViT: output and attention shapes at several sizes, parameter counts (hand formula and timm's published
// ViT-B/16 count), attention rows summing to 1, uniform attention for zero qkv, float32 softmax, FLOP count, the
// convolutional stem.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>

#include "core/error.h"
#include "models/init.h"
#include "models/vit.h"
#include "lib/tiny_models.h"

namespace facetrain {
namespace {

VitOptions tiny(int64_t image = 32, int64_t patch = 8, int64_t channels = 3) {
  return testing::tiny_vit_options(image, patch, channels, 5, 32, 2, 4);
}

TEST(Vit, OutputAndAttentionShapesAtSeveralSizes) {
  torch::manual_seed(0);
  struct Case {
    int64_t image, patch, channels;
    VitPool pool;
    int64_t head_hidden;
  };
  for (const auto& c : {Case{32, 8, 3, VitPool::kCls, 0}, Case{28, 7, 1, VitPool::kMean, 0},
                        Case{64, 16, 3, VitPool::kFlatten, 16}, Case{32, 4, 3, VitPool::kCls, 8}}) {
    auto o = tiny(c.image, c.patch, c.channels);
    o.pool = c.pool;
    o.head_hidden = c.head_hidden;
    Vit model(o);
    auto x = torch::randn({3, c.channels, c.image, c.image});
    auto logits = model->forward(x);
    EXPECT_EQ(logits.sizes(), (std::vector<int64_t>{3, 5}));
    auto out = model->forward_with_attention(x);
    ASSERT_EQ(out.attention.size(), 2u);
    const int64_t t = (c.image / c.patch) * (c.image / c.patch) + 1;
    for (const auto& a : out.attention) EXPECT_EQ(a.sizes(), (std::vector<int64_t>{3, 4, t, t}));
    EXPECT_EQ(model->forward_features(x).sizes(), (std::vector<int64_t>{3, t, 32}));
  }
}

TEST(Vit, ParameterCountMatchesHandFormula) {
  // image 32, patch 8, 3 channels, width 32, depth 2, mlp 128, 5 classes, T = 17:
  //   patch_embed 32*3*8*8 + 32 = 6176; cls 32; pos 17*32 = 544
  //   block: norm1 64 + qkv 32*96+96 = 3168 + proj 32*32+32 = 1056 + norm2 64 + fc1 32*128+128 = 4224
  //          + fc2 128*32+32 = 4128 -> 12704; two blocks 25408; norm 64; head 32*5+5 = 165
  Vit model(tiny());
  EXPECT_EQ(count_parameters(*model), 6176 + 32 + 544 + 25408 + 64 + 165);
}

TEST(Vit, VitTiny16ParameterCountMatchesTimm) {
  // timm's vit_tiny_patch16_224 (width 192, depth 12, heads 3, 1000 classes) has 5,717,416 parameters.
  VitOptions o;
  o.width = 192;
  o.heads = 3;
  o.num_classes = 1000;
  Vit model(o);
  EXPECT_EQ(count_parameters(*model), 5717416);
}

TEST(Vit, TruncatedNormalInit) {
  torch::manual_seed(5);
  auto t = torch::empty({1000000});
  trunc_normal_(t, 0.0, 0.02, -0.04, 0.04);
  EXPECT_GE(t.min().item<double>(), -0.04);
  EXPECT_LE(t.max().item<double>(), 0.04);
  EXPECT_NEAR(t.mean().item<double>(), 0.0, 1e-4);  // se 1.8e-5
  // N(0, 1) truncated to [-2, 2]: variance 1 - 2*2*phi(2)/(Phi(2)-Phi(-2)) = 1 - 4*0.0539910/0.9544997.
  EXPECT_NEAR(t.std().item<double>(), 0.02 * std::sqrt(1 - 4 * 0.0539910 / 0.9544997), 1e-4);  // se 1.2e-5
  EXPECT_GT(t.std().item<double>(), 0.0172);  // a plain clamp of N(0, 0.02) would give ~0.0178 -> also checked
}

TEST(Vit, ForwardWithAttentionGivesTheSameLogitsAndRowsSumToOne) {
  torch::manual_seed(1);
  Vit model(tiny());
  model->eval();
  auto x = torch::randn({4, 3, 32, 32});
  auto logits = model->forward(x);  // class-token shortcut in the last block
  auto out = model->forward_with_attention(x);
  EXPECT_TRUE(torch::allclose(logits, out.logits, 1e-5, 1e-6)) << (logits - out.logits).abs().max();
  for (const auto& a : out.attention) {
    EXPECT_EQ(a.scalar_type(), torch::kFloat);
    EXPECT_TRUE(torch::allclose(a.sum(-1), torch::ones({4, 4, 17}), 1e-5, 1e-6));
    EXPECT_GE(a.min().item<float>(), 0.0f);
  }
  // Mean pooling uses every row of the last block: same logits either way as well.
  auto o = tiny();
  o.pool = VitPool::kMean;
  Vit mean_model(o);
  mean_model->eval();
  EXPECT_TRUE(torch::allclose(mean_model->forward(x), mean_model->forward_with_attention(x).logits, 1e-5, 1e-6));
}

// Without attention maps, LibTorch 2.x builds take the fused scaled_dot_product_attention; with them, the explicit
// q k^T / softmax / v path. Both give the same outputs and gradients (fp32 within 1e-5; bf16 within its
// rounding), for every query row and for the class-token query alone. (In 1.13 both calls take the explicit path.)
TEST(Vit, FusedAttentionMatchesTheExplicitPath) {
  torch::manual_seed(7);
  for (bool cls_only : {false, true}) {
    VitAttention attn(32, 4, true, 0.0, 0.0);
    auto x = torch::randn({3, 17, 32}, torch::requires_grad());
    auto fused = attn(x, nullptr, cls_only);
    torch::Tensor weights;
    auto explicit_path = attn(x, &weights, cls_only);
    ASSERT_TRUE(weights.defined());
    EXPECT_TRUE(torch::allclose(fused, explicit_path, 1e-5, 1e-5)) << (fused - explicit_path).abs().max();
    auto grad_out = torch::randn_like(fused);
    auto fused_grads = torch::autograd::grad({fused}, {x, attn->qkv_->weight}, {grad_out});
    auto explicit_grads = torch::autograd::grad({explicit_path}, {x, attn->qkv_->weight}, {grad_out});
    for (size_t i = 0; i < fused_grads.size(); ++i) {
      EXPECT_TRUE(torch::allclose(fused_grads[i], explicit_grads[i], 1e-5, 1e-5))
          << "gradient " << i << ", cls_only " << cls_only << ": " << (fused_grads[i] - explicit_grads[i]).abs().max();
    }
  }
  VitAttention half(32, 4, true, 0.0, 0.0);
  half->to(torch::kBFloat16);
  auto x = torch::randn({2, 17, 32}).to(torch::kBFloat16);
  torch::Tensor weights;
  auto fused = half(x).to(torch::kFloat), explicit_path = half(x, &weights).to(torch::kFloat);
  EXPECT_TRUE(torch::allclose(fused, explicit_path, 2e-2, 2e-2)) << (fused - explicit_path).abs().max();
}

TEST(Vit, ZeroQkvGivesUniformAttention) {
  Vit model(tiny());
  {
    torch::NoGradGuard no_grad;
    for (auto& p : model->named_parameters())
      if (p.key().find("attn.qkv") != std::string::npos) p.value().zero_();
  }
  auto out = model->forward_with_attention(torch::randn({2, 3, 32, 32}));
  for (const auto& a : out.attention)
    EXPECT_TRUE(torch::allclose(a, torch::full_like(a, 1.0 / 17.0), 0, 1e-7)) << a.max() << " " << a.min();
}

TEST(Vit, SoftmaxRunsInFloat32ForLowPrecisionModels) {
  torch::manual_seed(2);
  Vit model(tiny());
  model->to(torch::kBFloat16);
  auto out = model->forward_with_attention(torch::randn({2, 3, 32, 32}).to(torch::kBFloat16));
  EXPECT_EQ(out.logits.scalar_type(), torch::kBFloat16);
  for (const auto& a : out.attention) {
    EXPECT_EQ(a.scalar_type(), torch::kFloat);
    EXPECT_TRUE(torch::allclose(a.sum(-1), torch::ones({2, 4, 17}), 1e-5, 1e-6));
  }
}

TEST(Vit, EveryParameterGetsAGradient) {
  torch::manual_seed(3);
  auto o = tiny();
  o.dropout = o.attention_dropout = 0.1;
  Vit model(o);
  model->train();
  auto loss = torch::nn::functional::cross_entropy(model->forward(torch::randn({4, 3, 32, 32})),
                                                   torch::tensor({0, 1, 2, 3}, torch::kLong));
  loss.backward();
  for (const auto& p : model->named_parameters()) {
    ASSERT_TRUE(p.value().grad().defined()) << p.key();
    EXPECT_GT(p.value().grad().abs().sum().item<double>(), 0.0) << p.key();
  }
}

TEST(Vit, FlopCountOfTheBenchmarkConfig) {
  const VitOptions o = testing::tiny_vit_options(32, 4, 3, 10, 192, 6, 3);  // the bench ViT
  // T = 65 tokens, MACs per block: qkv 65*192*576 = 7,188,480; q k^T and attn v 2*65*65*192 = 1,622,400;
  // proj 65*192*192 = 2,396,160; MLP 2*65*192*768 = 19,169,280 -> 30,376,320; 6 blocks 182,257,920.
  // patch embedding 64*48*192 = 589,824; head 192*10 = 1,920. FLOPs = 2 * 182,849,664.
  EXPECT_DOUBLE_EQ(vit_flops_per_image(o), 365699328.0);
  // The class-token shortcut skips (q, proj, MLP) for 64 tokens and their attention rows in the last block:
  // 64 * (192*192 + 192*192 + 2*192*768) + 64 * 2*65*192 = 23,592,960 + 1,597,440 MACs.
  EXPECT_DOUBLE_EQ(vit_executed_flops_per_image(o), 365699328.0 - 2.0 * (23592960.0 + 1597440.0));
}

TEST(Vit, ConvolutionalStemShapesNamesAndFlops) {
  // 28x28x1, stem 8 -> 16 channels (28 -> 14 -> 7), patch 1: a 7x7 grid of 49 tokens + class token.
  auto o = tiny(28, 1, 1);
  o.stem_channels = {8, 16};
  EXPECT_EQ(o.token_stride(), 4);
  EXPECT_EQ(o.grid(), 7);
  Vit model(o);
  auto x = torch::randn({2, 1, 28, 28});
  EXPECT_EQ(model->forward(x).sizes(), (std::vector<int64_t>{2, 5}));
  auto out = model->forward_with_attention(x);
  EXPECT_EQ(out.attention[0].sizes(), (std::vector<int64_t>{2, 4, 50, 50}));
  auto params = model->named_parameters();
  EXPECT_EQ(params["patch_embed.stem.0.weight"].sizes(), (std::vector<int64_t>{8, 1, 3, 3}));
  EXPECT_EQ(params["patch_embed.stem.1.weight"].sizes(), (std::vector<int64_t>{16, 8, 3, 3}));
  EXPECT_EQ(params["patch_embed.proj.weight"].sizes(), (std::vector<int64_t>{32, 16, 1, 1}));
  // Patch-embedding FLOPs: stem 14*14*(1*9*8) + 7*7*(8*9*16) MACs, then 49 tokens of 16 -> 32.
  auto plain = o;
  plain.stem_channels.clear();
  plain.patch_size = 4;  // same 7x7 grid without a stem: 49 tokens of 16 pixels -> 32
  EXPECT_DOUBLE_EQ(vit_flops_per_image(o) - vit_flops_per_image(plain),
                   2.0 * (14 * 14 * 72 + 7 * 7 * 1152 + 49 * 16 * 32 - 49 * 16 * 32));
  // The stride must divide the image: 28 / (4 * 2) is not whole.
  o.patch_size = 2;
  EXPECT_THROW(Vit{o}, UserError);
}

TEST(Vit, BadOptionsAndInputsAreUserErrors) {
  auto o = tiny();
  o.image_size = 30;
  EXPECT_THROW(Vit{o}, UserError);
  o = tiny();
  o.heads = 5;
  EXPECT_THROW(Vit{o}, UserError);
  Vit model(tiny());
  EXPECT_THROW(model->forward(torch::randn({1, 3, 64, 64})), UserError);
  EXPECT_THROW(model->forward(torch::randn({1, 1, 32, 32})), UserError);
}

}  // namespace
}  // namespace facetrain
