// VAE: shapes at several sizes, output ranges, eval-mode determinism, the CNN-VAE 64x64 parameter count,
// and the closed-form KL term on known inputs.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>

#include "core/error.h"
#include "models/init.h"
#include "models/vae.h"
#include "lib/tiny_models.h"

namespace facetrain {
namespace {

TEST(Vae, ShapesAtSeveralSizes) {
  torch::manual_seed(0);
  struct Case {
    int64_t image, channels, latent, width;
  };
  for (const auto& c : {Case{64, 3, 32, 8}, Case{32, 1, 16, 8}, Case{16, 3, 8, 4}, Case{128, 3, 16, 4}}) {
    Vae vae(testing::tiny_vae_options(c.image, c.channels, c.latent, c.width));
    auto x = torch::rand({2, c.channels, c.image, c.image}) * 2 - 1;
    auto out = vae->forward(x);
    EXPECT_EQ(out.recon.sizes(), x.sizes());
    EXPECT_EQ(out.mu.sizes(), (std::vector<int64_t>{2, c.latent}));
    EXPECT_EQ(out.logvar.sizes(), (std::vector<int64_t>{2, c.latent}));
    EXPECT_EQ(vae->decode(torch::randn({3, c.latent})).sizes(),
              (std::vector<int64_t>{3, c.channels, c.image, c.image}));
    EXPECT_LE(out.recon.abs().max().item<float>(), 1.0f);  // tanh output
  }
}

TEST(Vae, CnnVae64ParameterCount) {
  // LukeDitria/CNN-VAE RES_VAE.py VAE(channel_in=3, z=512) with ch=64, counted with PyTorch
  // (sum(p.numel() for p in VAE(3, 512).parameters())): the same blocks, conv6 named conv_out here.
  VaeOptions o;  // defaults: 64x64, 3 channels, latent 512, base width 64
  Vae vae(o);
  EXPECT_EQ(count_parameters(*vae), 19753331);
}

TEST(Vae, OutputActivationsAndEvalDeterminism) {
  torch::manual_seed(1);
  VaeOptions o = testing::tiny_vae_options(32, 3, 8, 8);
  o.output = VaeOutput::kSigmoid;
  Vae vae(o);
  auto x = torch::rand({4, 3, 32, 32});
  auto out = vae->forward(x);
  EXPECT_GE(out.recon.min().item<float>(), 0.0f);
  EXPECT_LE(out.recon.max().item<float>(), 1.0f);
  vae->eval();
  auto a = vae->forward(x), b = vae->forward(x);
  EXPECT_TRUE(torch::equal(a.recon, b.recon));  // eval: z = mu, no sampling
  EXPECT_TRUE(torch::allclose(a.recon, vae->decode(a.mu)));
  vae->train();
  auto c = vae->forward(x), d = vae->forward(x);
  EXPECT_FALSE(torch::equal(c.recon, d.recon));  // training: z sampled
}

TEST(Vae, TrainingStepGivesFiniteGradientsToEveryParameter) {
  torch::manual_seed(3);
  Vae vae(testing::tiny_vae_options(16, 3, 8, 8));
  auto x = torch::rand({4, 3, 16, 16}) * 2 - 1;
  auto out = vae->forward(x);
  (torch::mse_loss(out.recon, x) + 0.1 * kl_divergence(out.mu, out.logvar)).backward();
  for (const auto& p : vae->named_parameters()) {
    ASSERT_TRUE(p.value().grad().defined()) << p.key();
    EXPECT_TRUE(torch::isfinite(p.value().grad()).all().item<bool>()) << p.key();
    EXPECT_GT(p.value().grad().abs().sum().item<double>(), 0.0) << p.key();
  }
}

TEST(Vae, ReparameterizationHasTheRightMoments) {
  torch::manual_seed(2);
  auto mu = torch::full({200000, 1}, 1.5), logvar = torch::full({200000, 1}, std::log(0.25));
  auto z = VaeImpl::reparameterize(mu, logvar);
  EXPECT_NEAR(z.mean().item<double>(), 1.5, 0.005);  // se 0.5/sqrt(2e5) = 0.0011
  EXPECT_NEAR(z.std().item<double>(), 0.5, 0.005);
}

TEST(Vae, KlDivergenceClosedForm) {
  EXPECT_EQ(kl_divergence(torch::zeros({4, 10}), torch::zeros({4, 10})).item<double>(), 0.0);
  // Row 0: mu = (1, 2), logvar = (0, ln 2):
  //   -0.5 * (1 + 0 - 1 - 1) = 0.5 ;  -0.5 * (1 + ln 2 - 4 - 2) = 2.5 - 0.5 ln 2
  // Row 1: zeros -> 0.  Batch mean = (3 - 0.5 ln 2) / 2.
  auto mu = torch::tensor({1.0, 2.0, 0.0, 0.0}, torch::kDouble).view({2, 2});
  auto logvar = torch::tensor({0.0, std::log(2.0), 0.0, 0.0}, torch::kDouble).view({2, 2});
  EXPECT_NEAR(kl_divergence(mu, logvar).item<double>(), (3.0 - 0.5 * std::log(2.0)) / 2.0, 1e-12);
  // Against the definition for one Gaussian dimension: KL(N(m, s^2) || N(0, 1)) = ln(1/s) + (s^2 + m^2)/2 - 1/2.
  const double m = -0.7, s = 1.9;
  auto kl = kl_divergence(torch::tensor({{m}}, torch::kDouble), torch::tensor({{2 * std::log(s)}}, torch::kDouble));
  EXPECT_NEAR(kl.item<double>(), std::log(1 / s) + (s * s + m * m) / 2 - 0.5, 1e-12);
}

TEST(Vae, BadOptionsAreUserErrors) {
  VaeOptions o;
  o.image_size = 48;
  EXPECT_THROW(Vae{o}, UserError);
  o = VaeOptions{};
  o.base_width = 7;
  EXPECT_THROW(Vae{o}, UserError);
}

}  // namespace
}  // namespace facetrain
