// MPI tests of GradientBuckets (mpirun -np 1/2/3). The gold test: N ranks, each training on its slice of a
// global batch with bucketed gradient averaging, end with the same parameters as ONE model (built in the same
// process) trained on the union batch — for several bucket caps, an unused parameter, a parameter used on
// some ranks only, and accumulation over micro-batches. Plus broadcast/averaging helpers and misuse.
#include <gtest/gtest.h>

#include <sstream>
#include <torch/torch.h>

#include <string>
#include <vector>

#include "comm/communicator.h"
#include "comm/gradient_sync.h"

namespace facetrain {
namespace {

// conv -> ReLU -> Linear -> ReLU -> Linear, plus an `extra` head used only when asked and an `unused` one.
struct NetImpl : torch::nn::Module {
  NetImpl()
      : conv(torch::nn::Conv2dOptions(1, 4, 3).padding(1)),
        fc1(4 * 6 * 6, 16),
        fc2(16, 3),
        extra(16, 3),
        unused(16, 5) {
    register_module("conv", conv);
    register_module("fc1", fc1);
    register_module("fc2", fc2);
    register_module("extra", extra);
    register_module("unused", unused);
  }
  torch::Tensor forward(const torch::Tensor& x, bool use_extra) {
    torch::Tensor h = torch::relu(fc1(torch::relu(conv(x)).flatten(1)));
    torch::Tensor out = fc2(h);
    return use_extra ? out + extra(h) : out;
  }
  torch::nn::Conv2d conv;
  torch::nn::Linear fc1, fc2, extra, unused;
};
TORCH_MODULE(Net);

torch::Tensor flat_parameters(Net& net) {
  std::vector<torch::Tensor> flat;
  for (const auto& p : net->parameters()) flat.push_back(p.detach().reshape({-1}));
  return torch::cat(flat);
}

struct GoldOptions {
  int64_t cap_bytes = kDefaultBucketCapBytes;
  bool adam = false;
  double weight_decay = 0;  // with adam: AdamW's decoupled weight decay
  int micro_batches = 1;
  bool extra_on_odd_ranks = false;       // `extra` gets a gradient on odd ranks only
  bool set_to_none = false;              // reset .grad to undefined between steps instead of zeroing
  bool zero_in_buckets = false;          // zero with GradientBuckets::zero_gradients (what the trainer does)
  bool reload_after_first_step = false;  // load the model's own state back into it (as a resume does)
};

class GradientSyncTest : public ::testing::Test {
 protected:
  void SetUp() override {
    torch::set_num_threads(1);
    comm_ = make_mpi_communicator();
    n_ = comm_->size();
    r_ = comm_->rank();
  }

  // Trains k = 3 steps both ways and compares; returns the distributed model's bucket count.
  int64_t gold(const GoldOptions& o) {
    constexpr int kSteps = 3, kPerRank = 4;
    const int64_t global = int64_t{kPerRank} * n_;
    torch::manual_seed(7);  // the same data on every rank
    torch::Tensor x = torch::randn({kSteps, global, 1, 6, 6});
    torch::Tensor y = torch::randint(0, 3, {kSteps, global}, torch::kInt64);

    torch::manual_seed(100);
    Net reference;  // rank 0's initialisation, rebuilt from rank 0's seed
    torch::manual_seed(100 + r_);
    Net model;                               // each rank starts differently ...
    broadcast_module_state(*comm_, *model);  // ... until rank 0's weights are broadcast
    const torch::Tensor initial = flat_parameters(reference);
    EXPECT_TRUE(torch::equal(flat_parameters(model), initial)) << "broadcast_module_state";

    std::unique_ptr<torch::optim::Optimizer> opt, ref_opt;
    if (o.adam && o.weight_decay > 0) {
      const auto options = torch::optim::AdamWOptions(1e-2).weight_decay(o.weight_decay);
      opt = std::make_unique<torch::optim::AdamW>(model->parameters(), options);
      ref_opt = std::make_unique<torch::optim::AdamW>(reference->parameters(), options);
    } else if (o.adam) {
      opt = std::make_unique<torch::optim::Adam>(model->parameters(), torch::optim::AdamOptions(1e-2));
      ref_opt = std::make_unique<torch::optim::Adam>(reference->parameters(), torch::optim::AdamOptions(1e-2));
    } else {
      opt = std::make_unique<torch::optim::SGD>(model->parameters(), torch::optim::SGDOptions(0.1).momentum(0.9));
      ref_opt =
          std::make_unique<torch::optim::SGD>(reference->parameters(), torch::optim::SGDOptions(0.1).momentum(0.9));
    }
    GradientBuckets buckets(*comm_, model->parameters(), o.cap_bytes);
    auto extra_on = [&](int rank) { return o.extra_on_odd_ranks && rank % 2 == 1; };

    for (int s = 0; s < kSteps; ++s) {
      // N ranks: each its own slice, split into micro-batches; the loss is the slice mean.
      if (o.set_to_none) {
        model->zero_grad(/*set_to_none=*/true);
      } else if (o.zero_in_buckets) {
        buckets.zero_gradients();
      } else {
        opt->zero_grad();
      }
      const int64_t per_micro = kPerRank / o.micro_batches;
      for (int m = 0; m < o.micro_batches; ++m) {
        buckets.set_sync_enabled(m == o.micro_batches - 1);
        const int64_t start = r_ * kPerRank + m * per_micro;
        torch::Tensor loss =
            torch::nn::functional::cross_entropy(model->forward(x[s].narrow(0, start, per_micro), extra_on(r_)),
                                                 y[s].narrow(0, start, per_micro)) /
            o.micro_batches;
        loss.backward();
        if (m == 0 && o.micro_batches > 1 && n_ > 1) {
          // Sync off: this rank's gradient is its own (no communication): ranks differ.
          torch::Tensor g = model->fc2->weight.grad().reshape({1, -1});
          torch::Tensor all = comm_->all_gather(g);
          EXPECT_FALSE(torch::allclose(all[0], all[1])) << "gradients were synchronised with sync disabled";
        }
      }
      buckets.finalize();
      opt->step();
      if (o.reload_after_first_step && s == 0) {
        // A checkpoint load replaces each parameter's gradient accumulator (InputArchive::read set_s the
        // tensor): the buckets must notice and re-hook, or later steps lose their gradients.
        torch::serialize::OutputArchive out;
        model->save(out);
        std::ostringstream bytes;
        out.save_to(bytes);
        torch::serialize::InputArchive in;
        const std::string payload = bytes.str();
        in.load_from(payload.data(), payload.size());
        model->load(in);
      }

      // ONE model on the union batch: the mean over ranks of the per-slice mean losses.
      ref_opt->zero_grad();
      torch::Tensor ref_loss = torch::zeros({});
      for (int rank = 0; rank < n_; ++rank) {
        ref_loss = ref_loss + torch::nn::functional::cross_entropy(
                                  reference->forward(x[s].narrow(0, rank * kPerRank, kPerRank), extra_on(rank)),
                                  y[s].narrow(0, rank * kPerRank, kPerRank));
      }
      (ref_loss / n_).backward();
      ref_opt->step();
    }

    const torch::Tensor got = flat_parameters(model), want = flat_parameters(reference);
    EXPECT_GT((want - initial).abs().max().item<double>(), 1e-3) << "training did not move the parameters";
    EXPECT_TRUE(torch::allclose(got, want, /*rtol=*/1e-4, /*atol=*/1e-6))
        << "max difference " << (got - want).abs().max().item<double>();
    // Every rank holds the same parameters.
    const torch::Tensor all = comm_->all_gather(got.reshape({1, -1}));
    for (int rank = 1; rank < n_; ++rank) EXPECT_TRUE(torch::equal(all[rank], all[0])) << "rank " << rank;
    // The unused head has no gradient on any rank: .grad undefined, as in the single-process reference, so
    // the optimizer left it alone (compared above with AdamW's decoupled weight decay too).
    EXPECT_FALSE(model->unused->weight.grad().defined());
    EXPECT_FALSE(reference->unused->weight.grad().defined());
    return buckets.bucket_count();
  }

  void average_closed_form(const std::vector<int64_t>& shape);

  std::unique_ptr<Communicator> comm_;
  int n_ = 1, r_ = 0;
};

TEST_F(GradientSyncTest, GoldOneBucketSgd) { EXPECT_EQ(gold({}), 1); }

TEST_F(GradientSyncTest, GoldOneBucketAdam) {
  GoldOptions o;
  o.adam = true;
  gold(o);
}

// AdamW's decoupled weight decay would shrink a parameter that got a zero gradient: the unused head and,
// on steps where no rank used it, `extra` must stay exactly where the single-process reference leaves them.
TEST_F(GradientSyncTest, GoldAdamWLeavesParametersWithoutGradientAlone) {
  GoldOptions o;
  o.adam = true;
  o.weight_decay = 0.1;
  o.extra_on_odd_ranks = true;
  o.cap_bytes = 300;
  gold(o);
}

TEST_F(GradientSyncTest, GoldAfterLoadingStateIntoTheModule) {
  GoldOptions o;
  o.adam = true;
  o.reload_after_first_step = true;
  o.cap_bytes = 300;
  gold(o);
}

TEST_F(GradientSyncTest, GoldEveryParameterItsOwnBucket) {
  GoldOptions o;
  o.cap_bytes = 1;  // every parameter is larger than the cap: one bucket each
  Net probe;
  EXPECT_EQ(gold(o), static_cast<int64_t>(probe->parameters().size()));
}

TEST_F(GradientSyncTest, GoldCapSplittingParameterBoundaries) {
  GoldOptions o;
  o.cap_bytes = 700;  // 175 floats: a few small parameters share buckets, fc1.weight exceeds the cap
  gold(o);
}

TEST_F(GradientSyncTest, GoldParameterWithGradientOnSomeRanksOnly) {
  GoldOptions o;
  o.extra_on_odd_ranks = true;  // `extra` gets a gradient on odd ranks only (none with one rank)
  o.cap_bytes = 300;
  gold(o);
}

TEST_F(GradientSyncTest, GoldAccumulationOverTwoMicroBatches) {
  GoldOptions o;
  o.micro_batches = 2;
  o.cap_bytes = 1000;
  gold(o);
}

TEST_F(GradientSyncTest, GoldGradientsResetToUndefinedBetweenSteps) {
  GoldOptions o;
  o.set_to_none = true;
  o.micro_batches = 2;
  gold(o);
}

TEST_F(GradientSyncTest, GoldZeroedInTheBuckets) {
  GoldOptions o;
  o.zero_in_buckets = true;
  o.adam = true;
  o.weight_decay = 0.1;
  o.extra_on_odd_ranks = true;  // a parameter some ranks give no gradient: undefined on none, zeros on others
  o.micro_batches = 2;
  gold(o);
}

// zero_gradients zeroes in place: every .grad stays the same tensor (its bucket's view) across steps, so
// autograd never allocates a gradient after the first step.
TEST_F(GradientSyncTest, ZeroGradientsKeepsTheBucketViews) {
  torch::manual_seed(3);
  torch::nn::Linear fc(4, 3);
  GradientBuckets buckets(*comm_, fc->parameters(), /*bucket_cap_bytes=*/40);
  std::vector<const void*> first;
  for (int step = 0; step < 3; ++step) {
    buckets.zero_gradients();
    for (const auto& p : fc->parameters()) {
      if (step > 0) EXPECT_EQ(p.grad().abs().sum().item<float>(), 0.0f) << "not zeroed at step " << step;
    }
    fc->forward(torch::randn({2, 4})).sum().backward();
    buckets.finalize();
    std::vector<const void*> now;
    for (const auto& p : fc->parameters()) now.push_back(p.grad().data_ptr());
    if (step == 0) first = now;
    EXPECT_EQ(now, first) << "a gradient moved out of its bucket at step " << step;
    EXPECT_GT(fc->weight.grad().abs().sum().item<float>(), 0.0f);
  }
}

// Bucket assignment, checked against the rule computed here: reverse parameter order, a bucket closes when
// the next parameter would exceed the cap, a parameter larger than the cap gets its own bucket.
TEST_F(GradientSyncTest, BucketsFilledInReverseOrderUpToTheCap) {
  std::vector<torch::Tensor> params;
  for (int64_t numel : {10, 30, 5, 100, 20, 20, 1}) params.push_back(torch::zeros({numel}).requires_grad_(true));
  params.push_back(torch::zeros({3}));  // no requires_grad: not synchronised
  GradientBuckets buckets(*comm_, params, /*bucket_cap_bytes=*/40 * 4);
  // Reverse: 6(1) 5(20) | 4(20) | 3(100) | 2(5) 1(30) | 0(10)
  ASSERT_EQ(buckets.bucket_count(), 5);
  EXPECT_EQ(buckets.bucket_parameters(0), (std::vector<int64_t>{6, 5}));
  EXPECT_EQ(buckets.bucket_parameters(1), (std::vector<int64_t>{4}));
  EXPECT_EQ(buckets.bucket_parameters(2), (std::vector<int64_t>{3}));
  EXPECT_EQ(buckets.bucket_parameters(3), (std::vector<int64_t>{2, 1}));
  EXPECT_EQ(buckets.bucket_parameters(4), (std::vector<int64_t>{0}));
  EXPECT_EQ(buckets.bucket_bytes(2), 400);
}

TEST_F(GradientSyncTest, ReverseOrderRuleWithExactFits) {
  std::vector<torch::Tensor> params;
  for (int64_t numel : {4, 4, 4, 4, 9}) params.push_back(torch::zeros({numel}).requires_grad_(true));
  GradientBuckets buckets(*comm_, params, /*bucket_cap_bytes=*/8 * 4);
  // Reverse: 4(9) alone (larger than the cap) | 3(4) 2(4) exactly fill | 1(4) 0(4)
  ASSERT_EQ(buckets.bucket_count(), 3);
  EXPECT_EQ(buckets.bucket_parameters(0), (std::vector<int64_t>{4}));
  EXPECT_EQ(buckets.bucket_parameters(1), (std::vector<int64_t>{3, 2}));
  EXPECT_EQ(buckets.bucket_parameters(2), (std::vector<int64_t>{1, 0}));
}

// The first bucket's own cap; overlapped_buckets() counts the all-reduces that started while backward still
// had gradients to produce: never the last one, never any with one bucket.
TEST_F(GradientSyncTest, FirstBucketCapAndOverlap) {
  std::vector<torch::Tensor> params;
  for (int64_t numel : {10, 10, 10, 10}) params.push_back(torch::ones({numel}).requires_grad_(true));
  GradientBuckets small_first(*comm_, params, /*bucket_cap_bytes=*/30 * 4, "gradient",
                              /*first_bucket_cap_bytes=*/10 * 4);
  // Reverse: 3(10) | 2(10) 1(10) 0(10)
  ASSERT_EQ(small_first.bucket_count(), 2);
  EXPECT_EQ(small_first.bucket_parameters(0), (std::vector<int64_t>{3}));
  EXPECT_EQ(small_first.bucket_parameters(1), (std::vector<int64_t>{2, 1, 0}));
  // A chain: backward reaches params[3] first and params[0] last, as in a network's layers.
  auto backward = [&] {
    torch::Tensor h = torch::zeros({10});
    for (const auto& p : params) h = (h + p).tanh();
    h.sum().backward();
  };
  for (int step = 0; step < 2; ++step) {
    backward();
    EXPECT_EQ(small_first.overlapped_buckets(), 1) << "step " << step;
    small_first.finalize();
  }
}

TEST_F(GradientSyncTest, OneBucketNeverOverlaps) {
  std::vector<torch::Tensor> params;
  for (int64_t numel : {10, 10}) params.push_back(torch::ones({numel}).requires_grad_(true));
  GradientBuckets one(*comm_, params);
  ASSERT_EQ(one.bucket_count(), 1);
  (params[0] * params[1]).sum().backward();
  EXPECT_EQ(one.overlapped_buckets(), 0);
  one.finalize();
}

// Averaging with values known in closed form: parameter p of rank r gets gradient (r + 1) * (p + 1) + step.
// Small buckets (MPI_Iallreduce) and 480 kB ones (the communicator's ring).
TEST_F(GradientSyncTest, AverageClosedFormAndRepeatedSteps) {
  for (const std::vector<int64_t>& shape : {std::vector<int64_t>{5, 3}, std::vector<int64_t>{300, 400}}) {
    average_closed_form(shape);
  }
}

void GradientSyncTest::average_closed_form(const std::vector<int64_t>& shape) {
  std::vector<torch::Tensor> params;
  for (int p = 0; p < 4; ++p) params.push_back(torch::zeros(shape).requires_grad_(true));
  GradientBuckets buckets(*comm_, params, 2 * params[0].numel() * 4);  // two parameters per bucket
  EXPECT_EQ(buckets.bucket_count(), 2);
  for (int step = 0; step < 3; ++step) {
    for (auto& p : params) {
      if (p.grad().defined()) p.mutable_grad().zero_();
    }
    torch::Tensor loss = torch::zeros({});
    for (int p = 0; p < 4; ++p) loss = loss + params[p].sum() * static_cast<float>((r_ + 1) * (p + 1) + step);
    loss.backward();
    buckets.finalize();
    const double mean_rank_factor = (n_ + 1) / 2.0;  // mean of r + 1 over ranks
    for (int p = 0; p < 4; ++p) {
      EXPECT_TRUE(
          torch::allclose(params[p].grad(), torch::full(shape, static_cast<float>(mean_rank_factor * (p + 1) + step))))
          << "step " << step << " parameter " << p << " of " << params[p].numel() << " elements";
    }
  }
}

TEST_F(GradientSyncTest, SecondGradientInOneSyncedStepThrowsAndRecovers) {
  torch::Tensor w = torch::ones({8}).requires_grad_(true);
  GradientBuckets buckets(*comm_, {w});
  (w * 2).sum().backward();
  EXPECT_THROW((w * 3).sum().backward(), std::exception);
  buckets.finalize();  // every rank did the same: the buckets complete
  w.mutable_grad().zero_();
  (w * static_cast<float>(r_)).sum().backward();
  buckets.finalize();
  EXPECT_TRUE(torch::allclose(w.grad(), torch::full({8}, (n_ - 1) / 2.0f)));
}

TEST_F(GradientSyncTest, FinalizeWithSyncDisabledThrows) {
  torch::Tensor w = torch::ones({2}).requires_grad_(true);
  GradientBuckets buckets(*comm_, {w});
  buckets.set_sync_enabled(false);
  EXPECT_THROW(buckets.finalize(), std::exception);
}

TEST_F(GradientSyncTest, DifferentParameterListsThrowOnEveryRank) {
  if (n_ == 1) GTEST_SKIP() << "needs a second rank";
  std::vector<torch::Tensor> params{torch::zeros({4}).requires_grad_(true)};
  if (r_ == n_ - 1) params.push_back(torch::zeros({2}).requires_grad_(true));
  GradientBuckets buckets(*comm_, params);  // no collective yet: setups may still fail on one rank
  EXPECT_THROW(buckets.check_same_parameters_on_every_rank(), std::exception);
}

TEST_F(GradientSyncTest, AverageBuffersOfBatchNorm) {
  torch::nn::BatchNorm1d bn(3);
  bn->train();
  torch::manual_seed(50 + r_);
  bn->forward(torch::randn({8, 3}) * (r_ + 1) + r_);  // running stats differ per rank
  const torch::Tensor means = comm_->all_gather(bn->running_mean.reshape({1, 3}).clone());
  const torch::Tensor vars = comm_->all_gather(bn->running_var.reshape({1, 3}).clone());
  average_buffers(*comm_, *bn);
  EXPECT_TRUE(torch::allclose(bn->running_mean, means.mean(0)));
  EXPECT_TRUE(torch::allclose(bn->running_var, vars.mean(0)));
  EXPECT_EQ(bn->num_batches_tracked.item<int64_t>(), 1);
  if (n_ > 1) EXPECT_FALSE(torch::allclose(means[0], means[1]));  // the test had something to average
}

TEST_F(GradientSyncTest, BroadcastTensorsMixedDtypesFromLastRank) {
  const int root = n_ - 1;
  std::vector<torch::Tensor> tensors{torch::full({3}, static_cast<float>(r_)),
                                     torch::full({2, 2}, static_cast<int64_t>(r_ * 7)),
                                     torch::full({4}, static_cast<double>(r_) + 0.5)};
  broadcast_tensors(*comm_, tensors, root);
  EXPECT_TRUE(torch::equal(tensors[0], torch::full({3}, static_cast<float>(root))));
  EXPECT_TRUE(torch::equal(tensors[1], torch::full({2, 2}, static_cast<int64_t>(root * 7))));
  EXPECT_TRUE(torch::equal(tensors[2], torch::full({4}, static_cast<double>(root) + 0.5)));
}

}  // namespace
}  // namespace facetrain
