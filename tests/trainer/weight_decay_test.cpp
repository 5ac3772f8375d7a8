// Weight-decay groups as the field does it: weight matrices and kernels decay; 1-D tensors (biases, norm
// weights) and the ViT's pos_embed and cls_token do not, checked over the ViT's and MobileNetV2's real
// parameter names; name patterns add and remove; an AdamW step moves no exempt tensor by decay; layer decay
// composes with it.
#include <gtest/gtest.h>
#include <google/protobuf/text_format.h>
#include <torch/torch.h>

#include <map>

#include "core/error.h"
#include "models/mobilenet_v2.h"
#include "models/parameter_layers.h"
#include "tests/lib/tiny_models.h"
#include "trainer/optim.h"
#include "trainer/trainable.h"

namespace facetrain {
namespace {

std::map<std::string, bool> decays(const torch::nn::Module& m, const WeightDecayRule& rule) {
  std::map<std::string, bool> out;
  for (const auto& p : m.named_parameters()) out[p.key()] = rule.applies(p.key(), p.value());
  return out;
}

TEST(WeightDecay, VitDefaultsAsTimm) {
  Vit vit(testing::tiny_vit_options(16, 4, 3, 2, 16, 2, 2));
  proto::OptimizerConfig config;
  const std::map<std::string, bool> d = decays(*vit, WeightDecayRule(config));
  for (const auto& [name, on] : d) {
    const bool one_d = vit->named_parameters()[name].dim() == 1;
    const bool token = name == "pos_embed" || name == "cls_token";
    EXPECT_EQ(on, !one_d && !token) << name;
  }
  EXPECT_FALSE(d.at("pos_embed"));
  EXPECT_FALSE(d.at("cls_token"));
  EXPECT_FALSE(d.at("blocks.0.norm1.weight"));
  EXPECT_FALSE(d.at("blocks.0.attn.qkv.bias"));
  EXPECT_TRUE(d.at("blocks.0.attn.qkv.weight"));
  EXPECT_TRUE(d.at("patch_embed.proj.weight"));
  EXPECT_TRUE(d.at("head.weight"));
  EXPECT_FALSE(d.at("head.bias"));
}

TEST(WeightDecay, MobileNetV2BatchNormDoesNotDecay) {
  MobileNetV2Options o;
  o.num_classes = 3;
  o.width_mult = 0.25;
  MobileNetV2 net(o);
  proto::OptimizerConfig config;
  int bn = 0, conv = 0;
  for (const auto& [name, on] : decays(*net, WeightDecayRule(config))) {
    const torch::Tensor& p = net->named_parameters()[name];
    if (p.dim() == 1) {
      EXPECT_FALSE(on) << name;
      ++bn;
    } else {
      EXPECT_TRUE(on) << name;
      ++conv;
    }
  }
  EXPECT_GT(bn, 50);  // 52 BatchNorm layers' weights and biases, and the classifier's bias
  EXPECT_GT(conv, 50);
}

TEST(WeightDecay, PatternsAddAndRemove) {
  Vit vit(testing::tiny_vit_options(16, 4, 3, 2, 16, 2, 2));
  proto::OptimizerConfig config;
  config.add_no_weight_decay("^head\\.");
  EXPECT_FALSE(decays(*vit, WeightDecayRule(config)).at("head.weight"));
  config.add_weight_decay_on(".*");  // PyTorch's plain AdamW: everything decays
  for (const auto& [name, on] : decays(*vit, WeightDecayRule(config))) EXPECT_TRUE(on) << name;
  proto::OptimizerConfig bad;
  bad.add_no_weight_decay("(");
  try {
    WeightDecayRule rule(bad);
    FAIL() << "a bad regex accepted";
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find("optimizer.no_weight_decay: \"(\" is not a regular expression"),
              std::string::npos)
        << e.what();
  }
}

// With zero gradients AdamW's update is its decoupled decay alone: the weight shrinks by lr * decay, the
// bias stays bit-identical.
TEST(WeightDecay, AnAdamWStepLeavesABiasUntouchedByDecay) {
  torch::nn::Linear fc(4, 3);
  proto::OptimizerConfig config;
  config.set_kind("adamw");
  config.set_lr(0.1f);
  config.set_weight_decay(0.5f);
  const DecayGroups groups = weight_decay_groups(*fc, WeightDecayRule(config));
  ASSERT_EQ(groups.groups.size(), 2u);
  auto optimizer = make_optimizer(config, groups.groups, groups.weight_decay);
  const torch::Tensor weight = fc->weight.detach().clone(), bias = fc->bias.detach().clone();
  for (auto& p : fc->parameters()) p.mutable_grad() = torch::zeros_like(p);
  optimizer->step();
  EXPECT_TRUE(torch::equal(fc->bias, bias));
  EXPECT_TRUE(torch::allclose(fc->weight, weight * (1 - 0.1f * 0.5f)));
}

TEST(WeightDecay, LayerDecayComposesWithIt) {
  Vit vit(testing::tiny_vit_options(16, 4, 3, 2, 16, 3, 2));
  proto::TrainableConfig trainable;
  trainable.set_layer_decay(0.5f);
  proto::OptimizerConfig config;
  const WeightDecayRule rule(config);
  TrainablePlan plan(trainable, vit_parameter_layers(*vit, 3),
                     [&](const ParameterLayer& p) { return rule.applies(p.name, p.parameter); });
  const auto groups = plan.optimizer_groups();
  ASSERT_EQ(groups.size(), plan.lr_scales().size());
  ASSERT_EQ(groups.size(), plan.group_weight_decay().size());
  auto optimizer = make_optimizer(config, groups, plan.group_weight_decay());
  for (size_t g = 0; g < groups.size(); ++g) {
    const auto& options = static_cast<torch::optim::AdamWOptions&>(optimizer->param_groups()[g].options());
    EXPECT_DOUBLE_EQ(options.weight_decay(), plan.group_weight_decay()[g] ? config.weight_decay() : 0.0);
    for (const auto& p : groups[g]) {
      EXPECT_EQ(plan.group_weight_decay()[g], p.dim() > 1 && p.size(0) != 1) << "group " << g;
    }
  }
}

}  // namespace
}  // namespace facetrain
