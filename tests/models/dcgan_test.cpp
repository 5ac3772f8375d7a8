// DCGAN: seed-002 32x32 network against the model printed in seed 002 (names, shapes, parameter counts by
// hand), the paper's 64x64 network (pytorch/examples counts), other sizes, and init statistics.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <map>

#include "core/error.h"
#include "models/dcgan.h"
#include "models/init.h"
#include "lib/tiny_models.h"

namespace facetrain {
namespace {

std::map<std::string, std::vector<int64_t>> shapes(const torch::nn::Module& m) {
  std::map<std::string, std::vector<int64_t>> out;
  for (const auto& p : m.named_parameters()) out[p.key()] = p.value().sizes().vec();
  return out;
}

TEST(Dcgan, Seed002DiscriminatorMatchesThePrintedModel) {
  // Seed 002 prints:  conv1: Conv2d(3, 32, 4, 2, 1, bias=False)
  //                   conv2: Conv2d(32, 64, 4, 2, 1, bias=False), BatchNorm2d(64)
  //                   conv3: Conv2d(64, 128, 4, 2, 1, bias=False), BatchNorm2d(128)
  //                   fc: Linear(2048 -> 1)
  DcganDiscriminator d(DcganOptions::seed32());
  const std::map<std::string, std::vector<int64_t>> expected = {{"conv1.0.weight", {32, 3, 4, 4}},
                                                                {"conv2.0.weight", {64, 32, 4, 4}},
                                                                {"conv2.1.weight", {64}},
                                                                {"conv2.1.bias", {64}},
                                                                {"conv3.0.weight", {128, 64, 4, 4}},
                                                                {"conv3.1.weight", {128}},
                                                                {"conv3.1.bias", {128}},
                                                                {"fc.weight", {1, 2048}},
                                                                {"fc.bias", {1}}};
  EXPECT_EQ(shapes(*d), expected);
  // 3*32*16 = 1536; 32*64*16 + 2*64 = 32896; 64*128*16 + 2*128 = 131328; 2048 + 1 = 2049.
  EXPECT_EQ(count_parameters(*d), 1536 + 32896 + 131328 + 2049);
  EXPECT_EQ(count_parameters(*d), 167809);
  EXPECT_EQ(d->named_buffers().size(), 6u);  // running_mean/var, num_batches_tracked of two BatchNorms
  auto logits = d->forward(torch::randn({5, 3, 32, 32}));
  EXPECT_EQ(logits.sizes(), (std::vector<int64_t>{5, 1}));
}

TEST(Dcgan, Seed002GeneratorMatchesThePrintedModel) {
  // Seed 002 prints:  fc: Linear(100 -> 2048)
  //                   t_conv1: ConvTranspose2d(128, 64, 4, 2, 1, bias=False), BatchNorm2d(64)
  //                   t_conv2: ConvTranspose2d(64, 32, 4, 2, 1, bias=False), BatchNorm2d(32)
  //                   t_conv3: ConvTranspose2d(32, 3, 4, 2, 1, bias=False)
  DcganGenerator g(DcganOptions::seed32());
  const std::map<std::string, std::vector<int64_t>> expected = {
      {"fc.weight", {2048, 100}}, {"fc.bias", {2048}},      {"t_conv1.0.weight", {128, 64, 4, 4}},
      {"t_conv1.1.weight", {64}}, {"t_conv1.1.bias", {64}}, {"t_conv2.0.weight", {64, 32, 4, 4}},
      {"t_conv2.1.weight", {32}}, {"t_conv2.1.bias", {32}}, {"t_conv3.0.weight", {32, 3, 4, 4}}};
  EXPECT_EQ(shapes(*g), expected);
  // 100*2048 + 2048 = 206848; 128*64*16 + 2*64 = 131200; 64*32*16 + 2*32 = 32832; 32*3*16 = 1536.
  EXPECT_EQ(count_parameters(*g), 206848 + 131200 + 32832 + 1536);
  EXPECT_EQ(count_parameters(*g), 372416);
  auto images = g->forward(torch::randn({5, 100}));
  EXPECT_EQ(images.sizes(), (std::vector<int64_t>{5, 3, 32, 32}));
  EXPECT_LE(images.abs().max().item<float>(), 1.0f);
  EXPECT_EQ(g->forward(torch::randn({2, 100, 1, 1})).sizes(), (std::vector<int64_t>{2, 3, 32, 32}));
}

TEST(Dcgan, PaperNetworkMatchesPytorchExamplesCounts) {
  // pytorch/examples dcgan, nz 100, ngf = ndf = 64, nc 3:
  //   G: 100*512*16 + 1024 + 512*256*16 + 512 + 256*128*16 + 256 + 128*64*16 + 128 + 64*3*16 = 3,576,704
  //   D: 3*64*16 + 64*128*16 + 256 + 128*256*16 + 512 + 256*512*16 + 1024 + 512*1*16 = 2,765,568
  DcganGenerator g(DcganOptions::paper64());
  DcganDiscriminator d(DcganOptions::paper64());
  EXPECT_EQ(count_parameters(*g), 3576704);
  EXPECT_EQ(count_parameters(*d), 2765568);
  EXPECT_EQ(shapes(*g).at("main.0.weight"), (std::vector<int64_t>{100, 512, 4, 4}));
  EXPECT_EQ(shapes(*g).at("main.12.weight"), (std::vector<int64_t>{64, 3, 4, 4}));
  EXPECT_EQ(shapes(*d).at("main.11.weight"), (std::vector<int64_t>{1, 512, 4, 4}));
  auto images = g->forward(torch::randn({3, 100}));
  EXPECT_EQ(images.sizes(), (std::vector<int64_t>{3, 3, 64, 64}));
  EXPECT_EQ(d->forward(images).sizes(), (std::vector<int64_t>{3, 1}));
}

TEST(Dcgan, OtherSizesWidthsAndChannels) {
  for (auto arch : {DcganArch::kSeed, DcganArch::kPaper}) {
    for (int64_t size : {16, 32, 64, 128}) {
      DcganOptions o = testing::tiny_dcgan_options(arch, size, 1, 16, 8);
      o.d_outputs = 10;
      DcganGenerator g(o);
      DcganDiscriminator d(o);
      auto images = g->forward(torch::randn({2, 16}));
      EXPECT_EQ(images.sizes(), (std::vector<int64_t>{2, 1, size, size}));
      EXPECT_EQ(d->forward(images).sizes(), (std::vector<int64_t>{2, 10}));
    }
  }
  DcganOptions bad;
  bad.image_size = 48;
  EXPECT_THROW(DcganGenerator{bad}, UserError);
  EXPECT_THROW(DcganDiscriminator(DcganOptions::seed32())->forward(torch::randn({1, 3, 64, 64})), UserError);
}

TEST(Dcgan, DiscriminatorFlopsCountEachConvAndTheHead) {
  // model.cnn's GFLOP/s figure: 2 FLOPs per multiply-add. Seed 32x32x3, width 32, 10 logits:
  // conv1 3*16 MACs x 32*16*16 outputs, conv2 32*16 x 64*8*8, conv3 64*16 x 128*4*4, fc 2048 x 10.
  DcganOptions o = DcganOptions::seed32();
  o.d_outputs = 10;
  EXPECT_DOUBLE_EQ(discriminator_flops_per_image(o), 2.0 * (48 * 8192 + 512 * 4096 + 1024 * 2048 + 2048 * 10));
  // The paper layout's last 4x4 conv to the logits costs what the seed's fc does.
  DcganOptions p = o;
  p.arch = DcganArch::kPaper;
  EXPECT_DOUBLE_EQ(discriminator_flops_per_image(p), discriminator_flops_per_image(o));
}

TEST(Dcgan, TrainingStepGivesFiniteGradientsToEveryParameter) {
  // D runs on real and fake batches and G through D, as in a GAN step (in-place activations must not break
  // autograd; BatchNorm in training mode).
  torch::manual_seed(5);
  for (auto options : {DcganOptions::seed32(), DcganOptions::paper64()}) {
    options.g_width = 8;
    options.d_width = 8;
    DcganGenerator g(options);
    DcganDiscriminator d(options);
    init_dcgan_weights(*g);
    init_dcgan_weights(*d);
    const auto s = options.image_size;
    auto fake = g->forward(torch::randn({4, 100}));
    auto loss =
        torch::binary_cross_entropy_with_logits(d->forward(torch::rand({4, 3, s, s}) * 2 - 1), torch::ones({4, 1})) +
        torch::binary_cross_entropy_with_logits(d->forward(fake), torch::zeros({4, 1}));
    loss.backward();
    for (auto* m : {static_cast<torch::nn::Module*>(g.get()), static_cast<torch::nn::Module*>(d.get())}) {
      for (const auto& p : m->named_parameters()) {
        ASSERT_TRUE(p.value().grad().defined()) << p.key();
        EXPECT_TRUE(torch::isfinite(p.value().grad()).all().item<bool>()) << p.key();
        EXPECT_GT(p.value().grad().abs().sum().item<double>(), 0.0) << p.key();
      }
    }
  }
}

TEST(Dcgan, InitStatistics) {
  torch::manual_seed(4);
  DcganGenerator g(DcganOptions::paper64());
  DcganGenerator seed_g(DcganOptions::seed32());
  init_dcgan_weights(*g);
  init_dcgan_weights(*seed_g);
  std::vector<torch::Tensor> weights, gammas, betas, biases;
  for (auto* m : {static_cast<torch::nn::Module*>(g.get()), static_cast<torch::nn::Module*>(seed_g.get())}) {
    for (const auto& p : m->named_parameters()) {
      const auto& name = p.key();
      const bool bn = p.value().dim() == 1 && name.find("fc") == std::string::npos;
      if (bn && name.find("weight") != std::string::npos)
        gammas.push_back(p.value().flatten());
      else if (bn)
        betas.push_back(p.value().flatten());
      else if (name.find("bias") != std::string::npos)
        biases.push_back(p.value().flatten());
      else
        weights.push_back(p.value().flatten());
    }
  }
  auto w = torch::cat(weights), gamma = torch::cat(gammas), beta = torch::cat(betas), bias = torch::cat(biases);
  // n = 3,576,704 - 1920 + 372,416 - 2048 - 192 weights: the standard error of the mean is 0.02/sqrt(n) ~ 1e-5,
  // of the std 0.02/sqrt(2n) ~ 7e-6; tolerances are ~10 standard errors.
  EXPECT_EQ(w.numel(), 3576704 - 1920 + 372416 - 2048 - 192);
  EXPECT_NEAR(w.mean().item<double>(), 0.0, 1e-4);
  EXPECT_NEAR(w.std().item<double>(), 0.02, 1e-4);
  // BatchNorm gamma: n = 960 + 96 = 1056 channels: se(mean) = 6e-4, se(std) = 4.4e-4.
  EXPECT_EQ(gamma.numel(), 960 + 96);
  EXPECT_NEAR(gamma.mean().item<double>(), 1.0, 4e-3);
  EXPECT_NEAR(gamma.std().item<double>(), 0.02, 3e-3);
  EXPECT_EQ(beta.abs().max().item<double>(), 0.0);
  EXPECT_EQ(bias.abs().max().item<double>(), 0.0);  // the seed G's fc bias
}

}  // namespace
}  // namespace facetrain
