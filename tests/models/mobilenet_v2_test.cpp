// MobileNetV2 has torchvision's shape: the parameter count of torchvision.models.mobilenet_v2() (3,504,872
// with 1000 classes), its parameter and buffer names, its 300 M multiply-adds at 224 px; any input of 32 px
// or more gives logits; a torchvision-named file with another head loads with the head made fresh.
#include <gtest/gtest.h>

#include <torch/torch.h>

#include "core/error.h"
#include "models/mobilenet_v2.h"
#include "models/pretrained.h"
#include "models/safetensors.h"

namespace facetrain {
namespace {

MobileNetV2Options options(int64_t channels, int64_t classes, double width = 1.0) {
  MobileNetV2Options o;
  o.channels = channels;
  o.num_classes = classes;
  o.width_mult = width;
  return o;
}

TEST(MobileNetV2, TorchvisionCountsAndNames) {
  MobileNetV2 net(options(3, 1000));
  int64_t count = 0;
  for (const auto& p : net->parameters()) count += p.numel();
  EXPECT_EQ(count, 3504872);  // torchvision.models.mobilenet_v2(): sum(p.numel() for p in m.parameters())
  const auto params = net->named_parameters();
  const auto buffers = net->named_buffers();
  for (const char* name :
       {"features.0.0.weight", "features.0.1.weight", "features.1.conv.0.0.weight", "features.1.conv.1.weight",
        "features.1.conv.2.bias", "features.2.conv.0.0.weight", "features.2.conv.1.0.weight",
        "features.2.conv.2.weight", "features.2.conv.3.weight", "features.17.conv.3.bias", "features.18.0.weight",
        "features.18.1.bias", "classifier.1.weight", "classifier.1.bias"}) {
    EXPECT_TRUE(params.contains(name)) << name;
  }
  EXPECT_TRUE(buffers.contains("features.18.1.running_var"));
  EXPECT_TRUE(buffers.contains("features.3.conv.3.num_batches_tracked"));
  EXPECT_EQ(params["features.2.conv.1.0.weight"].sizes(), (std::vector<int64_t>{96, 1, 3, 3}));  // depthwise
  EXPECT_EQ(params["classifier.1.weight"].sizes(), (std::vector<int64_t>{1000, 1280}));
  // torchvision documents 0.30 GFLOPS (multiply-adds) at 224x224.
  EXPECT_NEAR(net->flops_per_image(224, 224) / 2 / 1e6, 300.8, 3.0);
}

TEST(MobileNetV2, SmallInputsAndWidths) {
  MobileNetV2 net(options(1, 10, 0.5));
  net->eval();
  EXPECT_EQ(net->forward(torch::randn({2, 1, 32, 32})).sizes(), (std::vector<int64_t>{2, 10}));
  EXPECT_EQ(net->forward(torch::randn({1, 1, 64, 48})).sizes(), (std::vector<int64_t>{1, 10}));
  EXPECT_THROW(net->forward(torch::randn({1, 1, 28, 28})), UserError);
  EXPECT_THROW(MobileNetV2(options(3, 10, 0)), UserError);
}

TEST(MobileNetV2, TorchvisionFileWithAnotherHeadLoadsWithAFreshHead) {
  torch::manual_seed(0);
  MobileNetV2 imagenet(options(3, 1000, 0.5));
  TensorMap file = module_to_tensors(*imagenet);
  MobileNetV2 mine(options(3, 2, 0.5));
  LoadReport report;
  load_mobilenet_v2_weights(mine, file, &report, "tv.safetensors");
  EXPECT_TRUE(torch::equal(mine->named_parameters()["features.5.conv.1.0.weight"],
                           imagenet->named_parameters()["features.5.conv.1.0.weight"]));
  ASSERT_EQ(report.fresh.size(), 1u);
  EXPECT_EQ(report.fresh[0], "classifier.1: 2 classes, file has 1000: initialised fresh");
  EXPECT_EQ(report.unused.size(), 2u);
  // Another width does not fit: one error naming the file and the field, the model unchanged.
  MobileNetV2 wider(options(3, 2, 1.0));
  const torch::Tensor before = wider->named_parameters()["features.0.0.weight"].clone();
  try {
    load_mobilenet_v2_weights(wider, file, nullptr, "tv.safetensors");
    ADD_FAILURE() << "no error";
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find("tv.safetensors: not a MobileNetV2 of this width"), std::string::npos)
        << e.what();
  }
  EXPECT_TRUE(torch::equal(before, wider->named_parameters()["features.0.0.weight"]));
}

// Strict loading: a file without the BatchNorm running statistics (or any other tensor but a classifier made
// fresh) is one error naming the file, the first missing names and their count; the model is left unchanged.
// Only num_batches_tracked, which these layers never read, may be absent.
TEST(MobileNetV2, FileWithoutBatchNormStatisticsIsOneErrorListingThem) {
  torch::manual_seed(0);
  MobileNetV2 source(options(3, 1000, 0.5));
  const TensorMap whole = module_to_tensors(*source);
  TensorMap no_stats, no_counters;
  int64_t stats = 0;
  for (const auto& [name, t] : whole) {
    const bool stat = name.find(".running_mean") != std::string::npos || name.find(".running_var") != std::string::npos;
    const bool counter = name.find(".num_batches_tracked") != std::string::npos;
    stats += stat ? 1 : 0;
    if (!stat) no_stats.emplace(name, t);
    if (!counter) no_counters.emplace(name, t);
  }
  ASSERT_GT(stats, 10);
  MobileNetV2 mine(options(3, 2, 0.5));
  const torch::Tensor mean_before = mine->named_buffers()["features.18.1.running_mean"].clone();
  const torch::Tensor weight_before = mine->named_parameters()["features.0.0.weight"].clone();
  try {
    load_mobilenet_v2_weights(mine, no_stats, nullptr, "no-stats.safetensors");
    ADD_FAILURE() << "no error";
  } catch (const UserError& e) {
    const std::string what = e.what();
    EXPECT_EQ(what.find('\n'), std::string::npos) << what;
    EXPECT_EQ(
        what.rfind("no-stats.safetensors: lacks " + std::to_string(stats) + " tensor(s) this MobileNetV2 needs", 0), 0u)
        << what;
    EXPECT_NE(what.find("features.0.1.running_mean"), std::string::npos) << what;
    EXPECT_NE(what.find("; and " + std::to_string(stats - 5) + " more"), std::string::npos) << what;
    EXPECT_EQ(what.find("classifier"), what.find("classifier of another class count"))
        << what;  // the head is not missing
  }
  EXPECT_TRUE(torch::equal(mean_before, mine->named_buffers()["features.18.1.running_mean"]));
  EXPECT_TRUE(torch::equal(weight_before, mine->named_parameters()["features.0.0.weight"]));

  // Without num_batches_tracked only: loads, statistics included.
  LoadReport report;
  load_mobilenet_v2_weights(mine, no_counters, &report, "no-counters.safetensors");
  EXPECT_TRUE(torch::equal(mine->named_buffers()["features.18.1.running_var"],
                           source->named_buffers()["features.18.1.running_var"]));
  ASSERT_EQ(report.fresh.size(), 1u);  // the 2-class classifier, made fresh on purpose
}

}  // namespace
}  // namespace facetrain
