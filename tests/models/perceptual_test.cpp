// Perceptual loss: torchvision layer indices, the no-weights error, zero for identical images, growth with
// distortion, gradients only to the input, input-range and grayscale handling, loading torchvision names.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstdlib>
#include <filesystem>

#include <unistd.h>

#include "core/error.h"
#include "models/perceptual.h"
#include "models/pretrained.h"
#include "models/safetensors.h"

namespace facetrain {
namespace {

PerceptualOptions random_features() {
  PerceptualOptions o;
  o.allow_random_features = true;
  return o;
}

std::string temp_path(const std::string& name) {
  auto dir = std::filesystem::temp_directory_path() / ("facetrain_models_test_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  return (dir / name).string();
}

TEST(Perceptual, TorchvisionLayerIndices) {
  // torchvision vgg19.features: relu1_1 = 1, relu2_1 = 6, relu3_1 = 11, relu4_1 = 20, relu5_1 = 29, 37 layers;
  // vgg16.features: relu1_2 = 3, relu2_2 = 8, relu3_3 = 15, relu4_3 = 22, pool5 = 30 (31 layers).
  struct Layer {
    VggVariant variant;
    const char* name;
    int index;
  };
  const VggVariant v19 = VggVariant::kVgg19, v16 = VggVariant::kVgg16;
  for (const Layer& l :
       {Layer{v19, "conv1_1", 0}, Layer{v19, "relu1_1", 1}, Layer{v19, "relu2_1", 6}, Layer{v19, "relu3_1", 11},
        Layer{v19, "relu4_1", 20}, Layer{v19, "relu5_1", 29}, Layer{v19, "pool5", 36}, Layer{v16, "relu1_2", 3},
        Layer{v16, "relu2_2", 8}, Layer{v16, "relu3_3", 15}, Layer{v16, "relu4_3", 22}, Layer{v16, "pool5", 30}}) {
    EXPECT_EQ(vgg_layer_index(l.variant, l.name), l.index) << l.name;
  }
  try {
    vgg_layer_index(VggVariant::kVgg16, "relu3_4", "model.vae.perceptual.layers");
    FAIL() << "no throw";
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find("model.vae.perceptual.layers: unknown vgg16 layer 'relu3_4'"),
              std::string::npos)
        << e.what();
  }
}

TEST(Perceptual, FullStacksHaveTorchvisionNames) {
  VggFeatures vgg16(VggVariant::kVgg16, 30), vgg19(VggVariant::kVgg19, 36);
  // 13 and 16 convs; torchvision parameter counts of vgg16/vgg19 features: 14,714,688 and 20,024,384.
  int64_t n16 = 0, n19 = 0;
  for (const auto& p : vgg16->parameters()) n16 += p.numel();
  for (const auto& p : vgg19->parameters()) n19 += p.numel();
  EXPECT_EQ(n16, 14714688);
  EXPECT_EQ(n19, 20024384);
  auto names = vgg19->named_parameters();
  EXPECT_TRUE(names.contains("features.0.weight"));
  EXPECT_TRUE(names.contains("features.34.bias"));
  EXPECT_FALSE(names.contains("features.36.weight"));
}

TEST(Perceptual, WithoutWeightsIsAUserErrorUnlessAllowed) {
  try {
    PerceptualLoss loss(PerceptualOptions{});
    FAIL() << "no throw";
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find("perceptual loss needs VGG weights"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("allow_random_features"), std::string::npos) << e.what();
  }
  EXPECT_NO_THROW(PerceptualLoss{random_features()});
}

TEST(Perceptual, ZeroForIdenticalImagesAndGrowingWithDistortion) {
  torch::manual_seed(0);
  PerceptualLoss loss(random_features());
  auto x = torch::rand({2, 3, 32, 32}) * 2 - 1;
  EXPECT_EQ(loss->forward(x, x.clone()).item<double>(), 0.0);
  auto noise = torch::randn_like(x);
  double previous = 0.0;
  for (double s : {0.01, 0.05, 0.1, 0.2, 0.4}) {
    const double value = loss->forward(x + s * noise, x).item<double>();
    EXPECT_GT(value, previous) << "noise scale " << s;
    previous = value;
  }
}

TEST(Perceptual, FrozenAndGradientsFlowToTheInputOnly) {
  torch::manual_seed(1);
  PerceptualLoss loss(random_features());
  loss->train(true);
  EXPECT_FALSE(loss->is_training());
  for (const auto& p : loss->parameters()) EXPECT_FALSE(p.requires_grad());
  auto input = (torch::rand({2, 3, 16, 16}) * 2 - 1).requires_grad_(true);
  auto target = (torch::rand({2, 3, 16, 16}) * 2 - 1).requires_grad_(true);
  loss->forward(input, target).backward();
  ASSERT_TRUE(input.grad().defined());
  EXPECT_GT(input.grad().abs().sum().item<double>(), 0.0);
  EXPECT_FALSE(target.grad().defined());
}

TEST(Perceptual, InputRangesAndGrayscale) {
  auto opts = random_features();
  opts.layers = {"relu1_2", "relu2_2"};
  opts.layer_weights = {1.0, 0.5};
  torch::manual_seed(2);
  PerceptualLoss signed_loss(opts);
  opts.input_range = PixelRange::kZeroToOne;
  torch::manual_seed(2);  // same random features
  PerceptualLoss unit_loss(opts);
  auto a = torch::rand({2, 3, 16, 16}), b = torch::rand({2, 3, 16, 16});
  const double unit = unit_loss->forward(a, b).item<double>();
  const double sign = signed_loss->forward(a * 2 - 1, b * 2 - 1).item<double>();
  EXPECT_NEAR(unit, sign, 1e-6 * std::abs(unit));
  // Layer weights: the sum of weighted per-layer MSEs of the features.
  auto fa = unit_loss->features(a), fb = unit_loss->features(b);
  const double manual =
      torch::mse_loss(fa[0], fb[0]).item<double>() + 0.5 * torch::mse_loss(fa[1], fb[1]).item<double>();
  EXPECT_NEAR(unit, manual, 1e-6 * manual);
  // One channel is replicated to three.
  auto g1 = torch::rand({2, 1, 16, 16}), g2 = torch::rand({2, 1, 16, 16});
  EXPECT_NEAR(unit_loss->forward(g1, g2).item<double>(),
              unit_loss->forward(g1.expand({-1, 3, -1, -1}), g2.expand({-1, 3, -1, -1})).item<double>(), 1e-7);
}

TEST(Perceptual, LoadsTorchvisionNamedWeightsFromSafetensors) {
  torch::manual_seed(3);
  VggFeatures source(VggVariant::kVgg16, 30);  // a whole torchvision vgg16.features
  TensorMap file = module_to_tensors(*source);
  file["classifier.0.weight"] = torch::randn({4, 8});  // torchvision's full model has a classifier: unused
  const auto path = temp_path("vgg16.safetensors");
  write_safetensors(path, file);

  PerceptualOptions o;
  o.variant = VggVariant::kVgg16;
  o.layers = {"relu1_2", "relu2_2", "relu3_3"};
  o.weights = path;
  PerceptualLoss loss(o);  // builds features 0..15 only
  for (const auto& p : loss->vgg_->named_parameters())
    EXPECT_TRUE(torch::equal(p.value(), file.at(p.key()))) << p.key();

  LoadReport report;
  VggFeatures partial(VggVariant::kVgg16, 15);
  load_vgg_features(*partial, file, &report, path);
  EXPECT_EQ(report.loaded.size(), 14u);       // 7 convs x (weight, bias)
  EXPECT_EQ(report.unused.size(), 12u + 1u);  // convs 17..28 (6 x 2) and classifier.0.weight

  // A wrong shape and a missing conv are listed together in one error naming the file.
  file["features.2.weight"] = torch::zeros({64, 64, 5, 5});
  file.erase("features.5.bias");
  const auto bad = temp_path("vgg16_bad.safetensors");
  write_safetensors(bad, file);
  o.weights = bad;
  try {
    PerceptualLoss broken(o);
    FAIL() << "no throw";
  } catch (const UserError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find(bad), std::string::npos) << what;
    EXPECT_NE(what.find("features.2.weight: model [64, 64, 3, 3] vs file [64, 64, 5, 5]"), std::string::npos) << what;
    EXPECT_NE(what.find("missing features.5.bias"), std::string::npos) << what;
  }
  std::filesystem::remove_all(std::filesystem::path(path).parent_path());
}

}  // namespace
}  // namespace facetrain
