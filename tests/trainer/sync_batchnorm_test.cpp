// distributed.sync_batchnorm, the gold test (mpirun -np 1/2/3): W ranks, each with B images of a global batch,
// BatchNorm over all ranks (comm/sync_batch_norm.h, installed as the trainer installs it) and bucketed gradient
// averaging, end every step with the gradients, running statistics and (after SGD steps) parameters of ONE
// model, built in the same process, trained on the W*B images with LibTorch's own BatchNorm. For the CNN
// classifier (model.cnn) and the DCGAN discriminator's step on real and fake images. Tolerance: float32 results
// of different summation orders, |a - b| <= 1e-5 + 1e-4 |b|. Without the sync, two or more ranks are far off:
// what the test would catch if the sync did nothing.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "comm/communicator.h"
#include "comm/gradient_sync.h"
#include "comm/sync_batch_norm.h"
#include "models/dcgan.h"
#include "models/sync_batch_norm.h"

namespace facetrain {
namespace {

constexpr int64_t kPerRank = 4;
constexpr double kRtol = 1e-4, kAtol = 1e-5;

// The loss of one model on a batch: the classifier's cross-entropy, or the discriminator's BCE on real and fake
// images in two forwards (as the DCGAN task does). `rows` picks the batch's images.
using Loss = std::function<torch::Tensor(DcganDiscriminator&, int64_t first, int64_t count)>;

class SyncBatchNormTest : public ::testing::Test {
 protected:
  void SetUp() override { comm_ = make_mpi_communicator(); }

  DcganDiscriminator build(const DcganOptions& options) {
    torch::manual_seed(7);  // the same initial weights in every model of every rank
    return DcganDiscriminator(options);
  }

  void install_sync(DcganDiscriminator& model) {
    Communicator* comm = comm_.get();
    const int layers =
        set_batchnorm_over_ranks(*model, [comm](SyncBatchNorm2dImpl& l, const torch::Tensor& x, double m) {
          return batch_norm_over_ranks(*comm, x, l.weight, l.bias, l.running_mean, l.running_var, m, l.options.eps());
        });
    ASSERT_GT(layers, 0);
  }

  // Largest violation of |a - b| <= atol + rtol |b| over the tensors of the two lists (<= 0: all within).
  static double excess(const std::vector<torch::Tensor>& a, const std::vector<torch::Tensor>& b) {
    EXPECT_EQ(a.size(), b.size());
    double worst = -1;
    for (size_t i = 0; i < a.size() && i < b.size(); ++i) {
      const torch::Tensor over = (a[i] - b[i]).abs() - (kAtol + kRtol * b[i].abs());
      worst = std::max(worst, over.max().item<double>());
    }
    return worst;
  }
  static std::vector<torch::Tensor> grads(DcganDiscriminator& m) {
    std::vector<torch::Tensor> out;
    for (const auto& p : m->parameters()) out.push_back(p.grad().clone());
    return out;
  }
  static std::vector<torch::Tensor> values(const std::vector<torch::Tensor>& tensors) {
    std::vector<torch::Tensor> out;
    for (const auto& t : tensors) out.push_back(t.detach().clone());
    return out;
  }

  // Two SGD steps (linear in the gradient, so equal gradients give equal parameters within the tolerance), one model
  // trained on the whole global batch and one per rank on its slice (synced or not); returns the worst excess over
  // gradients, running statistics and parameters of both steps.
  double train_and_compare(const DcganOptions& options, const Loss& loss, bool sync) {
    const int64_t w = comm_->size(), r = comm_->rank();
    DcganDiscriminator whole = build(options), mine = build(options);
    whole->train();
    mine->train();
    if (sync) install_sync(mine);
    GradientBuckets buckets(*comm_, mine->parameters(), 4096);  // several buckets
    torch::optim::SGD whole_opt(whole->parameters(), torch::optim::SGDOptions(0.1).momentum(0.9));
    torch::optim::SGD mine_opt(mine->parameters(), torch::optim::SGDOptions(0.1).momentum(0.9));
    double worst = -1;
    for (int step = 0; step < 2; ++step) {
      whole_opt.zero_grad();
      mine_opt.zero_grad();
      torch::manual_seed(100 + step);  // the same global batch for both models on every rank
      loss(whole, 0, w * kPerRank).backward();
      torch::manual_seed(100 + step);
      loss(mine, r * kPerRank, kPerRank).backward();
      buckets.finalize();  // the average over ranks of the per-rank mean losses' gradients
      worst = std::max(worst, excess(grads(mine), grads(whole)));
      worst = std::max(worst, excess(values(mine->buffers()), values(whole->buffers())));
      whole_opt.step();
      mine_opt.step();
      worst = std::max(worst, excess(values(mine->parameters()), values(whole->parameters())));
    }
    return worst;
  }

  std::unique_ptr<Communicator> comm_;
};

DcganOptions cnn_options() {
  DcganOptions o = DcganOptions::seed32();
  o.image_size = 16;
  o.d_width = 8;
  o.d_outputs = 5;  // model.cnn: a logit per class
  return o;
}

// The current seed's global batch (images and labels); the loss of rows [first, first + count).
Loss classifier_loss(int64_t global) {
  return [global](DcganDiscriminator& model, int64_t first, int64_t count) {
    const torch::Tensor images = torch::randn({global, 3, 16, 16});
    const torch::Tensor labels = torch::randint(5, {global});
    return torch::nn::functional::cross_entropy(model->forward(images.narrow(0, first, count)),
                                                labels.narrow(0, first, count));
  };
}

Loss discriminator_loss(int64_t global) {
  return [global](DcganDiscriminator& model, int64_t first, int64_t count) {
    const torch::Tensor real = torch::rand({global, 3, 16, 16}) * 2 - 1;
    const torch::Tensor fake = torch::tanh(torch::randn({global, 3, 16, 16}));
    namespace F = torch::nn::functional;
    const torch::Tensor d_real = model->forward(real.narrow(0, first, count)).reshape({-1});
    const torch::Tensor d_fake = model->forward(fake.narrow(0, first, count)).reshape({-1});
    return F::binary_cross_entropy_with_logits(d_real, torch::full_like(d_real, 0.9)) +
           F::binary_cross_entropy_with_logits(d_fake, torch::zeros_like(d_fake));
  };
}

TEST_F(SyncBatchNormTest, CnnOnWRanksTrainsAsOneRankOnTheWholeBatch) {
  const int64_t global = comm_->size() * kPerRank;
  EXPECT_LE(train_and_compare(cnn_options(), classifier_loss(global), true), 0.0);
  if (comm_->size() > 1) EXPECT_GT(train_and_compare(cnn_options(), classifier_loss(global), false), 1e-3);
}

TEST_F(SyncBatchNormTest, DcganDiscriminatorStepOnWRanksIsTheOneRankStep) {
  DcganOptions o = DcganOptions::seed32();
  o.image_size = 16;
  o.d_width = 8;
  const int64_t global = comm_->size() * kPerRank;
  EXPECT_LE(train_and_compare(o, discriminator_loss(global), true), 0.0);
  if (comm_->size() > 1) EXPECT_GT(train_and_compare(o, discriminator_loss(global), false), 1e-3);
}

// Eval mode and an empty function are LibTorch's BatchNorm: bit for bit, no collective.
TEST_F(SyncBatchNormTest, EvalModeAndNoFunctionArePlainBatchNorm) {
  DcganDiscriminator plain = build(cnn_options()), synced = build(cnn_options());
  install_sync(synced);
  plain->eval();
  synced->eval();
  const torch::Tensor x = torch::randn({3, 3, 16, 16});
  EXPECT_TRUE(torch::equal(plain->forward(x), synced->forward(x)));
  set_batchnorm_over_ranks(*synced, nullptr);
  plain->train();
  synced->train();
  EXPECT_TRUE(torch::equal(plain->forward(x), synced->forward(x)));
}

}  // namespace
}  // namespace facetrain
