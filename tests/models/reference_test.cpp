// Weights from the libraries themselves (tests/models/reference/make_reference.py writes them with timm and
// torchvision): a timm ViT and a torchvision MobileNetV2 give the same logits here as there on the same
// input, and a 14x14 position grid resampled to 4x4 on loading equals timm's resample_abs_pos_embed.
// FACETRAIN_REFERENCE_DIR names the folder; without it (no timm/torchvision) the tests skip.
#include <gtest/gtest.h>

#include <torch/torch.h>

#include <cstdlib>
#include <string>

#include "models/mobilenet_v2.h"
#include "models/pretrained.h"
#include "models/safetensors.h"
#include "models/vit.h"
#include "tests/lib/tiny_models.h"

namespace facetrain {
namespace {

std::string reference_dir() {
  const char* dir = std::getenv("FACETRAIN_REFERENCE_DIR");
  return dir ? dir : "";
}

#define REQUIRE_REFERENCE() \
  if (reference_dir().empty()) GTEST_SKIP() << "FACETRAIN_REFERENCE_DIR unset: no timm/torchvision outputs"

double max_difference(const torch::Tensor& a, const torch::Tensor& b) { return (a - b).abs().max().item<double>(); }

TEST(Reference, TimmVitLogits) {
  REQUIRE_REFERENCE();
  VitOptions o = testing::tiny_vit_options(32, 4, 3, 3, 48, 2, 3);
  o.mlp_ratio = 2;
  Vit vit(o);
  LoadReport report;
  load_vit_weights(vit, reference_dir() + "/timm_vit.safetensors", &report);
  EXPECT_TRUE(report.fresh.empty() && report.unused.empty()) << report.summary();
  vit->eval();
  const TensorMap io = read_safetensors(reference_dir() + "/timm_vit_io.safetensors");
  torch::NoGradGuard no_grad;
  const torch::Tensor logits = vit->forward(io.at("input"));
  EXPECT_LT(max_difference(logits, io.at("logits")), 1e-4) << logits << io.at("logits");
}

TEST(Reference, TorchvisionMobileNetV2Logits) {
  REQUIRE_REFERENCE();
  MobileNetV2Options o;
  o.channels = 3;
  o.num_classes = 4;
  o.width_mult = 0.5;
  MobileNetV2 net(o);
  LoadReport report;
  load_mobilenet_v2_weights(net, reference_dir() + "/torchvision_mobilenet_v2.safetensors", &report);
  EXPECT_TRUE(report.fresh.empty() && report.unused.empty()) << report.summary();
  net->eval();
  const TensorMap io = read_safetensors(reference_dir() + "/torchvision_mobilenet_v2_io.safetensors");
  torch::NoGradGuard no_grad;
  const torch::Tensor logits = net->forward(io.at("input"));
  EXPECT_LT(max_difference(logits, io.at("logits")), 1e-4) << logits << io.at("logits");
}

TEST(Reference, PositionEmbeddingResampledAsTimm) {
  REQUIRE_REFERENCE();
  VitOptions o = testing::tiny_vit_options(64, 16, 3, 3, 48, 1, 3);
  o.mlp_ratio = 2;
  Vit vit(o);
  LoadReport report;
  load_vit_weights(vit, reference_dir() + "/timm_vit224.safetensors", &report);
  ASSERT_EQ(report.notes.size(), 1u) << report.summary();
  const torch::Tensor timm = read_safetensors(reference_dir() + "/timm_pos_embed_4x4.safetensors").at("pos_embed");
  EXPECT_LT(max_difference(vit->named_parameters()["pos_embed"].detach(), timm), 1e-5);
}

}  // namespace
}  // namespace facetrain
