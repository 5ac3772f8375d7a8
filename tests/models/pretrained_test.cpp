// ViT weight loading: a synthetic checkpoint with Hugging Face names (built by hand from a facetrain ViT's
// weights) and one with timm names give the same outputs after loading; head mismatch reported and
// initialised fresh; all shape/name problems in one error; position-embedding resampling.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <functional>
#include <torch/torch.h>

#include "core/error.h"
#include "models/pretrained.h"
#include "models/safetensors.h"
#include "models/vit.h"
#include "lib/tiny_models.h"
#include "lib/test_util.h"

namespace facetrain {
namespace {

using testing::error_of;

VitOptions small(int64_t classes = 3, int64_t image = 32) {
  VitOptions o = testing::tiny_vit_options(image, 8, 3, classes, 32, 2, 4);
  o.layer_norm_eps = 1e-12;
  return o;
}

// The Hugging Face ViTForImageClassification state dict of `model`, written out name by name.
TensorMap huggingface_names(Vit& model, bool with_classifier = true) {
  auto t = module_to_tensors(*model);
  const int64_t w = model->options().width;
  TensorMap hf;
  hf["vit.embeddings.cls_token"] = t.at("cls_token");
  hf["vit.embeddings.position_embeddings"] = t.at("pos_embed");
  hf["vit.embeddings.patch_embeddings.projection.weight"] = t.at("patch_embed.proj.weight");
  hf["vit.embeddings.patch_embeddings.projection.bias"] = t.at("patch_embed.proj.bias");
  for (int64_t i = 0; i < model->options().depth; ++i) {
    const std::string ours = "blocks." + std::to_string(i) + ".";
    const std::string theirs = "vit.encoder.layer." + std::to_string(i) + ".";
    const char* qkv[3] = {"query", "key", "value"};
    for (int p = 0; p < 3; ++p) {
      hf[theirs + "attention.attention." + qkv[p] + ".weight"] = t.at(ours + "attn.qkv.weight").narrow(0, p * w, w);
      hf[theirs + "attention.attention." + qkv[p] + ".bias"] = t.at(ours + "attn.qkv.bias").narrow(0, p * w, w);
    }
    for (const char* wb : {"weight", "bias"}) {
      hf[theirs + "attention.output.dense." + wb] = t.at(ours + "attn.proj." + wb);
      hf[theirs + "intermediate.dense." + wb] = t.at(ours + "mlp.fc1." + wb);
      hf[theirs + "output.dense." + wb] = t.at(ours + "mlp.fc2." + wb);
      hf[theirs + "layernorm_before." + wb] = t.at(ours + "norm1." + wb);
      hf[theirs + "layernorm_after." + wb] = t.at(ours + "norm2." + wb);
    }
  }
  hf["vit.layernorm.weight"] = t.at("norm.weight");
  hf["vit.layernorm.bias"] = t.at("norm.bias");
  if (with_classifier) {
    hf["classifier.weight"] = t.at("head.weight");
    hf["classifier.bias"] = t.at("head.bias");
  }
  hf["vit.pooler.dense.weight"] = torch::zeros({w, w});  // in google/vit-base-patch16-224-in21k, unused
  return hf;
}

TEST(Pretrained, HuggingFaceNamesLoadToTheSameOutputs) {
  torch::manual_seed(0);
  Vit a(small());
  a->eval();
  auto x = torch::randn({2, 3, 32, 32});
  auto expected = a->forward(x);
  auto hf = huggingface_names(a);
  EXPECT_EQ(detect_vit_naming(hf), VitNaming::kHuggingFace);
  torch::manual_seed(1);
  Vit b(small());
  b->eval();
  LoadReport report;
  load_vit_weights(b, hf, &report, "hf.safetensors");
  EXPECT_TRUE(torch::allclose(b->forward(x), expected, 1e-6, 1e-6));
  EXPECT_EQ(report.loaded.size(), b->named_parameters().size());
  EXPECT_TRUE(report.fresh.empty());
  EXPECT_EQ(report.unused, std::vector<std::string>{"vit.pooler.dense.weight"});
}

TEST(Pretrained, TimmNamesLoadToTheSameOutputsThroughAFile) {
  torch::manual_seed(2);
  Vit a(small());
  a->eval();
  auto x = torch::randn({2, 3, 32, 32});
  TensorMap timm;
  for (const auto& [k, v] : module_to_tensors(*a)) timm["module." + k] = v;  // a DDP-saved state dict
  EXPECT_EQ(detect_vit_naming(timm), VitNaming::kTimm);
  const auto path =
      std::filesystem::temp_directory_path() / ("facetrain_timm_" + std::to_string(::getpid()) + ".safetensors");
  write_safetensors(path.string(), timm);
  torch::manual_seed(3);
  Vit b(small());
  b->eval();
  load_vit_weights(b, path.string());
  std::filesystem::remove(path);
  EXPECT_TRUE(torch::equal(b->forward(x), a->forward(x)));
}

TEST(Pretrained, DifferentHeadIsInitialisedFreshAndReported) {
  torch::manual_seed(4);
  Vit pretrained(small(1000));
  auto hf = huggingface_names(pretrained);
  Vit model(small(2));
  LoadReport report;
  load_vit_weights(model, hf, &report);
  ASSERT_EQ(report.fresh.size(), 1u);
  EXPECT_EQ(report.fresh[0], "head: 2 classes, checkpoint has 1000: initialised fresh");
  EXPECT_TRUE(torch::equal(model->blocks_[1]->named_parameters()["mlp.fc2.weight"],
                           pretrained->blocks_[1]->named_parameters()["mlp.fc2.weight"]));
  EXPECT_EQ(model->head_->weight.sizes(), (std::vector<int64_t>{2, 32}));
  EXPECT_GT(model->head_->weight.abs().sum().item<double>(), 0.0);
  EXPECT_NE(report.summary().find("head: 2 classes, checkpoint has 1000: initialised fresh"), std::string::npos);

  // google/vit-base-patch16-224-in21k as a ViTModel has no classifier at all.
  Vit bare(small(2));
  LoadReport bare_report;
  load_vit_weights(bare, huggingface_names(pretrained, /*with_classifier=*/false), &bare_report);
  EXPECT_EQ(bare_report.fresh, std::vector<std::string>{"head: not in checkpoint: initialised fresh"});
}

TEST(Pretrained, AllMismatchesInOneErrorAndTheModelUnchanged) {
  torch::manual_seed(5);
  auto wide_options = small();
  wide_options.width = 64;
  wide_options.depth = 3;
  Vit wide(wide_options);
  Vit model(small());
  auto before = module_to_tensors(*model);
  TensorMap before_copy;
  for (const auto& [k, v] : before) before_copy[k] = v.clone();
  const auto what = error_of([&] { load_vit_weights(model, huggingface_names(wide), nullptr, "big.safetensors"); });
  ASSERT_FALSE(what.empty());
  EXPECT_EQ(what.find('\n'), std::string::npos);  // one line
  EXPECT_NE(what.find("big.safetensors: ViT weights do not fit the model"), std::string::npos) << what;
  EXPECT_NE(what.find("checkpoint: width 64, patch 8, channels 3, depth 3"), std::string::npos) << what;
  EXPECT_NE(what.find("patch_embed.proj.weight: model [32, 3, 8, 8] vs checkpoint [64, 3, 8, 8]"), std::string::npos)
      << what;
  EXPECT_NE(what.find("blocks.1.attn.qkv.weight: model [96, 32] vs checkpoint [192, 64]"), std::string::npos) << what;
  EXPECT_NE(what.find("unexpected blocks.2.norm1.weight (model.vit.depth is 2)"), std::string::npos) << what;
  for (const auto& [k, v] : module_to_tensors(*model)) EXPECT_TRUE(torch::equal(v, before_copy.at(k))) << k;

  // An incomplete q/k/v triple: the fused qkv is missing.
  torch::manual_seed(6);
  Vit same(small());
  auto hf = huggingface_names(same);
  hf.erase("vit.encoder.layer.0.attention.attention.value.weight");
  const auto missing = error_of([&] { load_vit_weights(model, hf); });
  EXPECT_NE(missing.find("missing blocks.0.attn.qkv.weight"), std::string::npos) << missing;
}

TEST(Pretrained, PositionEmbeddingsAreResampledForAnotherGrid) {
  torch::manual_seed(7);
  Vit big(small(3, 64));  // 8x8 grid
  {
    torch::NoGradGuard no_grad;
    // Per-channel constant over the grid: bicubic resampling must keep it exactly (up to rounding).
    big->pos_embed_.narrow(1, 1, 64).copy_(torch::arange(32, torch::kFloat).view({1, 1, 32}).expand({1, 64, 32}));
  }
  Vit model(small(3, 32));  // 4x4 grid
  LoadReport report;
  load_vit_weights(model, module_to_tensors(*big), &report);
  EXPECT_EQ(report.notes, std::vector<std::string>{"pos_embed: 8x8 grid resampled (bicubic) to 4x4"});
  EXPECT_TRUE(torch::equal(model->pos_embed_.narrow(1, 0, 1), big->pos_embed_.narrow(1, 0, 1)));  // class token
  EXPECT_TRUE(torch::allclose(model->pos_embed_.narrow(1, 1, 16),
                              torch::arange(32, torch::kFloat).view({1, 1, 32}).expand({1, 16, 32}), 1e-5, 1e-5));
  VitLoadOptions strict;
  strict.interpolate_pos_embed = false;
  const auto what = error_of([&] { load_vit_weights(model, module_to_tensors(*big), nullptr, "ckpt", strict); });
  EXPECT_NE(what.find("pos_embed: model [1, 17, 32] vs checkpoint [1, 65, 32]"), std::string::npos) << what;
}

}  // namespace
}  // namespace facetrain
