// Mixed precision (trainer/precision.h) on the CPU: the loss scaler's arithmetic and schedule, the skip of
// an overflowing step agreed by every rank through the gradient sync (run on 1 and 2 ranks), bf16 autocast
// scopes, the ViT under bf16 autocast keeping float32 attention, weights and gradients, and the measured bf16 hint.
#include <gtest/gtest.h>
#include <torch/cuda.h>
#include <torch/torch.h>

#include <cmath>
#include <limits>
#include <sstream>

#include "core/error.h"
#include "core/host_reads.h"
#include "models/vit.h"
#include "comm/communicator.h"
#include "comm/gradient_sync.h"
#include "trainer/optim.h"
#include "trainer/precision.h"
#include "lib/tiny_models.h"

namespace facetrain {
namespace {

TEST(Precision, ParseNamesTheFieldAndKeepsFp16OnCuda) {
  EXPECT_EQ(parse_precision("fp32", torch::kCPU), Precision::kFp32);
  EXPECT_EQ(parse_precision("bf16", torch::kCPU), Precision::kBf16);
  try {
    parse_precision("fp16", torch::kCPU);
    FAIL() << "fp16 on CPU accepted";
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find("distributed.precision"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("CUDA"), std::string::npos) << e.what();
  }
  EXPECT_THROW(parse_precision("fp8", torch::kCPU), UserError);
}

TEST(LossScaler, DisabledIsTheIdentityAndNeverSkips) {
  LossScaler scaler(false);
  torch::Tensor loss = torch::tensor(3.0f);
  EXPECT_TRUE(torch::equal(scaler.scale_loss(loss), loss));
  torch::Tensor p = torch::zeros({2}).requires_grad_(true);
  p.mutable_grad() = torch::tensor({std::numeric_limits<float>::infinity(), 1.0f});
  EXPECT_TRUE(scaler.unscale_and_update({p}));
  EXPECT_EQ(scaler.scale(), 1.0);
  EXPECT_EQ(p.grad()[1].item<float>(), 1.0f);  // untouched
}

TEST(LossScaler, UnscalesSkipsOnOverflowBacksOffAndGrows) {
  LossScaler::Options o;
  o.initial_scale = 1024;
  o.growth_interval = 3;
  LossScaler scaler(true, o);
  torch::Tensor p = torch::zeros({3}).requires_grad_(true);
  // The scaled loss's gradient is scale x the true one; unscaling gives the true one back.
  (scaler.scale_loss((p * torch::tensor({1.0f, 2.0f, 3.0f})).sum())).backward();
  EXPECT_TRUE(torch::allclose(p.grad(), torch::tensor({1024.0f, 2048.0f, 3072.0f})));
  EXPECT_TRUE(scaler.unscale_and_update({p}));
  EXPECT_TRUE(torch::allclose(p.grad(), torch::tensor({1.0f, 2.0f, 3.0f})));
  EXPECT_EQ(scaler.scale(), 1024);
  // Overflow: skipped, scale halved, counter reset.
  p.mutable_grad() = torch::tensor({1.0f, std::numeric_limits<float>::infinity(), 0.0f});
  EXPECT_FALSE(scaler.unscale_and_update({p}));
  EXPECT_EQ(scaler.scale(), 512);
  EXPECT_EQ(scaler.skipped_steps(), 1);
  p.mutable_grad() = torch::tensor({std::nanf(""), 0.0f, 0.0f});
  EXPECT_FALSE(scaler.unscale_and_update({p}));
  EXPECT_EQ(scaler.scale(), 256);
  // Three good steps in a row double it.
  for (int i = 0; i < 3; ++i) {
    p.mutable_grad() = torch::ones({3});
    EXPECT_TRUE(scaler.unscale_and_update({p}));
  }
  EXPECT_EQ(scaler.scale(), 512);
}

TEST(LossScaler, StateTravelsInTheCheckpoint) {
  LossScaler::Options o;
  o.initial_scale = 64;
  LossScaler a(true, o);
  torch::Tensor p = torch::zeros({1}).requires_grad_(true);
  p.mutable_grad() = torch::full({1}, std::numeric_limits<float>::infinity());
  a.unscale_and_update({p});
  torch::serialize::OutputArchive out;
  a.save(out, "loss_scaler");
  std::ostringstream bytes;
  out.save_to(bytes);
  torch::serialize::InputArchive in;
  std::istringstream is(bytes.str());
  in.load_from(is);
  LossScaler b(true, o);
  b.load(in, "loss_scaler");
  EXPECT_EQ(b.scale(), 32);
  EXPECT_EQ(b.skipped_steps(), 1);
  LossScaler c(true, o);
  c.load(in, "no_such_key");  // an fp32 run's checkpoint: initial scale
  EXPECT_EQ(c.scale(), 64);
}

TEST(Autocast, Bf16ScopeOnCpuCastsMatmulsAndRestoresOnExit) {
  torch::Tensor a = torch::randn({4, 4});
  {
    AutocastScope outer(Precision::kBf16, torch::kCPU);
    EXPECT_EQ(torch::matmul(a, a).scalar_type(), torch::kBFloat16);
    { AutocastScope inner(Precision::kBf16, torch::kCPU); }
    EXPECT_EQ(torch::matmul(a, a).scalar_type(), torch::kBFloat16);  // still inside the outer scope
  }
  EXPECT_EQ(torch::matmul(a, a).scalar_type(), torch::kFloat);
  {
    AutocastScope none(Precision::kFp32, torch::kCPU);
    EXPECT_EQ(torch::matmul(a, a).scalar_type(), torch::kFloat);
  }
}

TEST(Autocast, VitUnderBf16KeepsFloat32AttentionWeightsAndGradients) {
  torch::manual_seed(3);
  Vit vit(testing::tiny_vit_options(8, 4, 1, 3, 16, 2, 2));
  torch::Tensor x = torch::randn({5, 1, 8, 8});
  VitOutput out;
  {
    AutocastScope autocast(Precision::kBf16, torch::kCPU);
    out = vit->forward_with_attention(x);
  }
  for (const auto& a : out.attention) {
    EXPECT_EQ(a.scalar_type(), torch::kFloat);  // softmax in float32 under autocast
    EXPECT_TRUE(torch::allclose(a.sum(-1), torch::ones_like(a.sum(-1)), 1e-5, 1e-5));
  }
  EXPECT_EQ(out.logits.scalar_type(), torch::kBFloat16);
  torch::Tensor loss = torch::cross_entropy_loss(out.logits.to(torch::kFloat), torch::tensor({0, 1, 2, 0, 1}));
  EXPECT_TRUE(std::isfinite(loss.item<double>()));
  loss.backward();
  for (const auto& p : vit->parameters()) {
    ASSERT_TRUE(p.grad().defined());
    EXPECT_EQ(p.scalar_type(), torch::kFloat);
    EXPECT_EQ(p.grad().scalar_type(), torch::kFloat);
  }
  // bf16 logits stay close to the float32 ones (8 mantissa bits).
  torch::NoGradGuard no_grad;
  EXPECT_TRUE(torch::allclose(out.logits.to(torch::kFloat), vit->forward(x), 0.05, 0.05));
}

// An overflow on one rank is an overflow on all: the average carries the inf to every rank, so every rank
// skips the step, keeps its weights and halves its scale, with no extra collective.
TEST(LossScalerDistributed, OverflowOnOneRankSkipsTheStepOnEveryRank) {
  torch::set_num_threads(1);
  std::unique_ptr<Communicator> comm = make_mpi_communicator();
  const int rank = comm->rank(), n = comm->size();
  torch::Tensor w = torch::ones({4}).requires_grad_(true);
  std::vector<torch::Tensor> params{w};
  GradientBuckets buckets(*comm, params, 1 << 20);
  auto optimizer = std::make_unique<torch::optim::SGD>(params, torch::optim::SGDOptions(0.1));
  LossScaler::Options o;
  o.initial_scale = 8;
  LossScaler scaler(true, o);
  StepTimes times;

  // Step 1, finite: gradient (rank + 1) per element, scaled by 8, averaged, unscaled -> mean of rank + 1.
  optimizer->zero_grad();
  scaler.scale_loss((w * static_cast<float>(rank + 1)).sum()).backward();
  synced_optimizer_step(buckets, *optimizer, params, 0, &times, &scaler);
  const float mean = (n + 1) / 2.0f;
  EXPECT_TRUE(torch::allclose(w, torch::full({4}, 1.0f - 0.1f * mean)));
  EXPECT_EQ(scaler.scale(), 8);

  // Step 2: the last rank's loss overflows.
  const torch::Tensor before = w.detach().clone();
  optimizer->zero_grad();
  const float factor = rank == n - 1 ? std::numeric_limits<float>::infinity() : 1.0f;
  scaler.scale_loss((w * factor).sum()).backward();
  const double norm = read_to_host_scalar(synced_optimizer_step(buckets, *optimizer, params, 1.0, &times, &scaler));
  EXPECT_EQ(norm, 0);
  EXPECT_TRUE(torch::equal(w, before)) << "rank " << rank << " stepped on an overflow";
  EXPECT_EQ(scaler.scale(), 4);
  EXPECT_EQ(scaler.skipped_steps(), 1);
}

// fp16 loss scaling on a GPU goes through LibTorch's fused unscale kernel: gradients divided by the scale,
// an inf skips the step and halves the scale. Compiled in every build; skips without a CUDA device.
TEST(Precision, FusedUnscaleOnCuda) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device: runs on a GPU (tools/scripts/gpu-check.sh)";
  const auto on_gpu = torch::TensorOptions().dtype(torch::kFloat).device(torch::kCUDA, 0);
  LossScaler scaler(true);
  torch::Tensor w = torch::zeros({4}, on_gpu).requires_grad_(true);
  w.mutable_grad() = torch::full({4}, static_cast<float>(scaler.scale()), on_gpu);
  EXPECT_TRUE(scaler.unscale_and_update({w}));
  EXPECT_TRUE(torch::allclose(w.grad().cpu(), torch::ones({4})));
  const double before = scaler.scale();
  {
    torch::NoGradGuard no_grad;
    w.mutable_grad()[2].fill_(std::numeric_limits<float>::infinity());
  }
  EXPECT_FALSE(scaler.unscale_and_update({w}));
  EXPECT_EQ(scaler.scale(), before / 2);
  EXPECT_EQ(scaler.skipped_steps(), 1);
}

// The bf16 hint quotes the rates it rests on and is silent below kHintMinGain, or when bf16 was timed only at
// a smaller size than fp32 (no bf16 units: too slow to time at the full size).
TEST(Precision, Bf16HintOnlyFromAMeasuredGain) {
  MatmulRates rates;
  rates.threads = 1;
  rates.fp32_gflops = 110;
  rates.bf16_gflops = 210;
  rates.bf16_size = MatmulRates::kMatmulSize;
  EXPECT_EQ(bf16_hint(rates).rfind("bf16 matmul 1.9x fp32 here (256^3 at start-up: 210.0 vs 110.0 GFLOP/s): "
                                   "distributed.precision=bf16",
                                   0),
            0u)
      << bf16_hint(rates);
  rates.bf16_gflops = 1.29 * rates.fp32_gflops;
  EXPECT_EQ(bf16_hint(rates), "");
  rates.bf16_gflops = 1.31 * rates.fp32_gflops;
  EXPECT_NE(bf16_hint(rates), "");
  rates.bf16_size = 128;
  EXPECT_EQ(bf16_hint(rates), "");
  rates = MatmulRates{};  // never measured
  EXPECT_EQ(bf16_hint(rates), "");
}

}  // namespace
}  // namespace facetrain
