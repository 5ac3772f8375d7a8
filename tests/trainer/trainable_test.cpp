// Fine-tuning's TrainablePlan on real models: which parameters train at each epoch, the optimizer holding
// state for those only, frozen weights unchanged by steps, layer-decay scales, and the one-line errors.
#include <gtest/gtest.h>
#include <google/protobuf/text_format.h>

#include <torch/torch.h>

#include <cmath>
#include <map>
#include <set>
#include <sstream>
#include <string>

#include "core/config.pb.h"
#include "core/error.h"
#include "models/mobilenet_v2.h"
#include "models/parameter_layers.h"
#include "tests/lib/tiny_models.h"
#include "trainer/optim.h"
#include "trainer/trainable.h"

namespace facetrain {
namespace {

using testing::tiny_vit_options;

Vit tiny_vit() { return Vit(tiny_vit_options(16, 4, 3, 2, 16, 3, 2)); }

std::set<std::string> trainable_names(torch::nn::Module& m) {
  std::set<std::string> out;
  for (const auto& p : m.named_parameters()) {
    if (p.value().requires_grad()) out.insert(p.key());
  }
  return out;
}

proto::TrainableConfig parse(const std::string& text) {
  proto::TrainableConfig c;
  // The text format of the `trainable` section, as a run config writes it.
  FT_CHECK(google::protobuf::TextFormat::ParseFromString(text, &c), "bad test config: " << text);
  return c;
}

TEST(Trainable, HeadOnlyThenLastBlockThenAll) {
  Vit vit = tiny_vit();
  TrainablePlan plan(parse(R"(train: "head" unfreeze { epoch: 2 last_blocks: 1 } unfreeze { epoch: 4 train: "all" })"),
                     vit_parameter_layers(*vit, 3));
  EXPECT_EQ(trainable_names(*vit), (std::set<std::string>{"head.weight", "head.bias"}));
  EXPECT_FALSE(plan.apply(1));  // still stage 0
  EXPECT_TRUE(plan.apply(2));
  std::set<std::string> stage1 = trainable_names(*vit);
  EXPECT_TRUE(stage1.count("blocks.2.attn.qkv.weight"));
  EXPECT_TRUE(stage1.count("norm.weight"));  // the final LayerNorm trains with the last block
  EXPECT_FALSE(stage1.count("blocks.1.attn.qkv.weight"));
  EXPECT_FALSE(stage1.count("pos_embed"));
  EXPECT_TRUE(plan.apply(5));
  EXPECT_EQ(trainable_names(*vit).size(), vit->parameters().size());
  EXPECT_TRUE(plan.apply(0));  // a resume into epoch 0 (any epoch) gets that epoch's stage
  EXPECT_EQ(trainable_names(*vit).size(), 2u);
  EXPECT_EQ(plan.trainable_elements(), 2 * 16 + 2);
}

TEST(Trainable, FrozenParametersGetNoOptimizerStateAndDoNotMove) {
  torch::manual_seed(0);
  Vit vit = tiny_vit();
  TrainablePlan plan(parse(R"(train: "head" last_blocks: 1 unfreeze { epoch: 1 train: "all" }
                              frozen: "^patch_embed\\.")"),
                     vit_parameter_layers(*vit, 3));
  proto::OptimizerConfig oc;
  oc.set_kind("adamw");
  oc.set_weight_decay(0.1f);  // decoupled weight decay would move a frozen weight that the optimizer touched
  auto optimizer = make_optimizer(oc, plan.optimizer_groups());
  // Groups: stage 0 at one scale; stage 1 at another; patch_embed in none.
  EXPECT_EQ(optimizer->param_groups().size(), 2u);
  size_t in_optimizer = 0;
  for (const auto& g : optimizer->param_groups()) in_optimizer += g.params().size();
  EXPECT_EQ(in_optimizer, vit->parameters().size() - 2);  // patch_embed.proj.{weight,bias} never train
  std::map<std::string, torch::Tensor> before;
  for (const auto& p : vit->named_parameters()) before[p.key()] = p.value().detach().clone();
  for (int step = 0; step < 3; ++step) {
    optimizer->zero_grad();
    vit->forward(torch::randn({4, 3, 16, 16})).logsumexp(1).mean().backward();
    optimizer->step();
  }
  // The state's key is the parameter's TensorImpl address (a string of it in LibTorch 1.x, the pointer in 2.x).
  auto key = [](const auto& k) {
    std::ostringstream s;
    s << k;
    return s.str();
  };
  std::set<std::string> with_state;
  for (const auto& s : optimizer->state()) with_state.insert(key(s.first));
  for (const auto& p : vit->named_parameters()) {
    const bool trains = p.value().requires_grad();
    EXPECT_EQ(with_state.count(key(static_cast<void*>(p.value().unsafeGetTensorImpl()))), trains ? 1u : 0u) << p.key();
    EXPECT_EQ(torch::equal(p.value(), before[p.key()]), !trains) << p.key();
  }
}

TEST(Trainable, LayerDecayScalesAsTimm) {
  Vit vit = tiny_vit();
  TrainablePlan plan(parse("layer_decay: 0.5"), vit_parameter_layers(*vit, 3));
  auto groups = plan.optimizer_groups();
  ASSERT_EQ(groups.size(), plan.lr_scales().size());
  // 3 blocks: the head and final norm at 1, block 3 at 0.5, block 1 at 0.125, the stem at 0.0625.
  std::map<const void*, double> scale;
  for (size_t g = 0; g < groups.size(); ++g) {
    for (const auto& p : groups[g]) scale[p.unsafeGetTensorImpl()] = plan.lr_scales()[g];
  }
  for (const auto& p : vit->named_parameters()) {
    const double s = scale.at(p.value().unsafeGetTensorImpl());
    if (p.key().rfind("head.", 0) == 0 || p.key().rfind("norm.", 0) == 0) EXPECT_DOUBLE_EQ(s, 1) << p.key();
    if (p.key().rfind("blocks.2.", 0) == 0) EXPECT_DOUBLE_EQ(s, 0.5) << p.key();
    if (p.key().rfind("blocks.0.", 0) == 0) EXPECT_DOUBLE_EQ(s, 0.125) << p.key();
    if (p.key() == "pos_embed") EXPECT_DOUBLE_EQ(s, 0.0625);
  }
  proto::OptimizerConfig oc;
  auto optimizer = make_optimizer(oc, groups);
  set_learning_rates(*optimizer, 0.01, plan.lr_scales());
  for (size_t g = 0; g < groups.size(); ++g) {
    EXPECT_DOUBLE_EQ(optimizer->param_groups()[g].options().get_lr(), 0.01 * plan.lr_scales()[g]);
  }
}

TEST(Trainable, VaeLastDecoderBlocksAndFrozenEncoder) {
  Vae vae(testing::tiny_vae_options(16, 3, 8, 8));
  const int64_t enc = static_cast<int64_t>(vae->options().widths().size());
  TrainablePlan plan(parse(R"(train: "head" last_blocks: 1)"), vae_parameter_layers(*vae, enc, enc + 1));
  for (const auto& name : trainable_names(*vae)) {
    EXPECT_TRUE(name.rfind("conv_out.", 0) == 0 || name.rfind("decoder." + std::to_string(enc) + ".", 0) == 0) << name;
  }
  TrainablePlan no_encoder(parse(R"(frozen: "^encoder\\.")"), vae_parameter_layers(*vae, enc, enc + 1));
  for (const auto& p : vae->named_parameters()) {
    EXPECT_EQ(p.value().requires_grad(), p.key().rfind("encoder.", 0) != 0) << p.key();
  }
}

void expect_user_error(const std::string& text, const std::string& part) {
  Vit vit = tiny_vit();
  try {
    TrainablePlan plan(parse(text), vit_parameter_layers(*vit, 3));
    ADD_FAILURE() << "no error for " << text;
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find(part), std::string::npos) << e.what();
  }
}

TEST(Trainable, BadSectionsAreOneLineNamingTheField) {
  expect_user_error(R"(train: "everything")", "trainable.train: \"everything\" is not one of all, head, none");
  expect_user_error(R"(train: "head" last_blocks: 4)", "trainable.last_blocks: 4 is not in 0..3");
  expect_user_error(R"(train: "none" parameters: "^decoder\\.")",
                    "trainable.parameters: \"^decoder\\.\" matches no parameter");
  expect_user_error(R"(train: "none" parameters: "(")", "is not a regular expression");
  expect_user_error(R"(train: "head" unfreeze { epoch: 2 train: "all" } unfreeze { epoch: 2 last_blocks: 1 })",
                    "trainable.unfreeze[1].epoch: 2 must be after 2");
  expect_user_error(R"(train: "none")", "trainable: selects no parameter");
  expect_user_error(R"(train: "all" unfreeze { epoch: 1 last_blocks: 1 })",
                    "trainable.unfreeze[0]: selects no parameter");
  expect_user_error(R"(layer_decay: 1.5)", "trainable.layer_decay: 1.5 is not in (0, 1]");
}

// Frozen means frozen: a BatchNorm layer whose weights do not train runs in eval mode, so its running
// statistics are bit-identical after training steps; the unfreeze stage that trains it lets them move.
TEST(Trainable, FrozenBatchNormStatisticsStayFixedUntilUnfrozen) {
  torch::manual_seed(3);
  MobileNetV2Options o;
  o.num_classes = 3;
  o.width_mult = 0.25;
  MobileNetV2 net(o);
  auto buffers = [&] {
    std::vector<torch::Tensor> out;
    for (const auto& b : net->named_buffers()) {
      if (b.key().find("running_") != std::string::npos) out.push_back(b.value().clone());
    }
    return out;
  };
  auto same = [](const std::vector<torch::Tensor>& a, const std::vector<torch::Tensor>& b) {
    for (size_t i = 0; i < a.size(); ++i) {
      if (!torch::equal(a[i], b[i])) return false;
    }
    return true;
  };
  TrainablePlan plan(parse(R"(train: "head" unfreeze { epoch: 1 train: "all" })"), net->parameter_layers());
  const std::vector<torch::Tensor> before = buffers();
  ASSERT_FALSE(before.empty());
  EXPECT_EQ(plan.set_train_mode(*net), 52);  // every BatchNorm layer of MobileNetV2: the head has none
  {
    torch::NoGradGuard no_grad;
    net->forward(torch::randn({4, 3, 32, 32}));
  }
  EXPECT_TRUE(same(before, buffers())) << "a frozen BatchNorm layer's statistics moved";
  EXPECT_TRUE(net->is_training());  // the rest trains (dropout before the head)

  ASSERT_TRUE(plan.apply(1));  // everything trains from epoch 1
  EXPECT_EQ(plan.set_train_mode(*net), 0);
  {
    torch::NoGradGuard no_grad;
    net->forward(torch::randn({4, 3, 32, 32}));
  }
  EXPECT_FALSE(same(before, buffers())) << "unfrozen BatchNorm layers kept their statistics";

  // freeze_batchnorm: false is PyTorch's plain behaviour: frozen layers' statistics follow the data.
  MobileNetV2 plain(o);
  TrainablePlan plain_plan(parse(R"(train: "head" freeze_batchnorm: false)"), plain->parameter_layers());
  EXPECT_EQ(plain_plan.set_train_mode(*plain), 0);
}

}  // namespace
}  // namespace facetrain
