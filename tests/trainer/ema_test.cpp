// WeightEma against the closed form: after weights w_1..w_n (one optimizer step each) the shadow is
// s_0 = w_0, s_t = d_{t-1} s_{t-1} + (1 - d_{t-1}) w_t, with d_t = min(decay, 1 - (1 + t)^-power) under
// warm-up; swap() exchanges shadow and weights exactly; save/load restore the shadow bit for bit.
#include <gtest/gtest.h>

#include <torch/torch.h>

#include <cmath>

#include "core/config.pb.h"
#include "core/error.h"
#include "trainer/ema.h"

namespace facetrain {
namespace {

proto::EmaConfig ema_config(float decay, float power) {
  proto::EmaConfig c;
  c.set_decay(decay);
  c.set_warmup_power(power);
  return c;
}

TEST(WeightEma, MatchesTheClosedFormWithAndWithoutWarmup) {
  for (float power : {0.0f, 0.75f}) {
    torch::manual_seed(1);
    torch::nn::Linear model(3, 2);
    WeightEma ema(ema_config(0.9f, power), *model);
    torch::Tensor expected = model->weight.detach().to(torch::kFloat64).clone();
    for (int64_t t = 0; t < 6; ++t) {
      {
        torch::NoGradGuard no_grad;
        model->weight.add_(torch::randn({2, 3}));  // an optimizer step's new weights
        model->bias.add_(1.0);
      }
      ema.update(t);
      const double decay = 0.9f;  // the config holds a float
      const double d = power > 0 ? std::min(decay, 1.0 - std::pow(1.0 + t, -static_cast<double>(power))) : decay;
      EXPECT_DOUBLE_EQ(ema.decay_at(t), d);
      expected = d * expected + (1 - d) * model->weight.detach().to(torch::kFloat64);
    }
    torch::Tensor raw = model->weight.detach().clone();
    ema.swap();
    EXPECT_TRUE(torch::allclose(model->weight.detach().to(torch::kFloat64), expected, 1e-6, 1e-6)) << "power " << power;
    ema.swap();
    EXPECT_TRUE(torch::equal(model->weight.detach(), raw));  // swapped back exactly
  }
}

TEST(WeightEma, SaveAndLoadRestoreTheShadowExactly) {
  torch::manual_seed(2);
  torch::nn::Linear model(4, 3);
  WeightEma ema(ema_config(0.5f, 0), *model);
  {
    torch::NoGradGuard no_grad;
    model->weight.mul_(3);
  }
  ema.update(0);
  torch::serialize::OutputArchive out;
  ema.save(out, "model");
  std::ostringstream bytes;
  out.save_to(bytes);

  torch::manual_seed(3);
  torch::nn::Linear other(4, 3);
  WeightEma restored(ema_config(0.5f, 0), *other);
  torch::serialize::InputArchive in;
  std::istringstream stream(bytes.str());
  in.load_from(stream);
  ASSERT_TRUE(restored.load(in, "model"));
  ema.swap();
  restored.swap();
  EXPECT_TRUE(torch::equal(model->weight, other->weight));
  EXPECT_TRUE(torch::equal(model->bias, other->bias));

  torch::serialize::InputArchive none;
  std::istringstream empty_stream(bytes.str());
  none.load_from(empty_stream);
  EXPECT_FALSE(restored.load(none, "generator"));  // no "generator_ema": a run without EMA
}

TEST(WeightEma, BadSectionsNameTheField) {
  torch::nn::Linear model(2, 2);
  EXPECT_THROW(WeightEma(ema_config(1.0f, 0), *model), UserError);
  EXPECT_THROW(WeightEma(ema_config(0.9f, -1), *model), UserError);
}

}  // namespace
}  // namespace facetrain
