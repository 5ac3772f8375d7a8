// The training loop's per-step agreement (trainer/step_agreement.h) on 1, 2 and 3 ranks: every rank gets
// the same mean loss, the count of non-finite ranks and the stop request of any rank.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>

#include "comm/communicator.h"
#include "trainer/step_agreement.h"

namespace facetrain {
namespace {

TEST(StepAgreement, MeanLossOverRanks) {
  auto comm = make_mpi_communicator();
  const int n = comm->size(), r = comm->rank();
  const StepAgreement agreed = agree_on_step(*comm, r + 1.0, false);
  EXPECT_DOUBLE_EQ(agreed.mean_loss, (n + 1) / 2.0);  // (1 + ... + n) / n
  EXPECT_EQ(agreed.nonfinite_ranks, 0);
  EXPECT_FALSE(agreed.stop);
  EXPECT_NO_THROW(agreed.check_finite(7, "run/checkpoints"));
}

TEST(StepAgreement, NonFiniteLossOnTheLastRankStopsEveryRank) {
  auto comm = make_mpi_communicator();
  const int n = comm->size(), r = comm->rank();
  const double loss = r == n - 1 ? std::numeric_limits<double>::quiet_NaN() : 2.0;
  const StepAgreement agreed = agree_on_step(*comm, loss, false);
  EXPECT_EQ(agreed.nonfinite_ranks, 1);
  EXPECT_DOUBLE_EQ(agreed.mean_loss, 2.0 * (n - 1) / n);  // the NaN counts as 0
  try {
    agreed.check_finite(7, "run/checkpoints");
    FAIL() << "a non-finite loss on one rank must throw on every rank";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("loss is not finite at step 7 on 1 rank(s)"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("run/checkpoints"), std::string::npos) << e.what();
  }
}

// A rank whose loss was NaN at an earlier step since the last agreement (its last loss finite again) counts
// as non-finite, and every rank names the earliest such step over the ranks.
TEST(StepAgreement, EarliestNonFiniteStepSinceTheLastAgreement) {
  auto comm = make_mpi_communicator();
  const int n = comm->size(), r = comm->rank();
  const int64_t first = r == 0 ? -1 : 10 - r;  // rank 1 at step 9, rank 2 at step 8; rank 0 none
  const StepAgreement agreed = agree_on_step(*comm, 1.5, false, first);
  EXPECT_EQ(agreed.nonfinite_ranks, n - 1);
  EXPECT_EQ(agreed.first_nonfinite_step, n == 1 ? -1 : 11 - n);
  if (n > 1) {
    try {
      agreed.check_finite(12, "run/checkpoints");
      FAIL() << "an earlier non-finite loss must throw on every rank";
    } catch (const std::runtime_error& e) {
      const std::string want = "loss is not finite at step " + std::to_string(11 - n) + " on " + std::to_string(n - 1);
      EXPECT_NE(std::string(e.what()).find(want), std::string::npos) << e.what();
    }
  }
}

// NonfiniteLosses keeps the first non-finite step on the device until reset().
TEST(NonfiniteLosses, FirstNonFiniteStepUntilReset) {
  NonfiniteLosses losses;
  losses.add(torch::tensor(1.0f), 3);
  EXPECT_EQ(losses.first_step().item<double>(), -1);
  losses.add(torch::tensor(std::numeric_limits<float>::infinity()), 4);
  losses.add(torch::tensor(std::numeric_limits<float>::quiet_NaN()), 5);
  losses.add(torch::tensor(2.0f), 6);
  EXPECT_EQ(losses.first_step().item<double>(), 4);
  losses.reset();
  EXPECT_EQ(losses.first_step().item<double>(), -1);
  losses.add(torch::tensor(std::numeric_limits<float>::quiet_NaN()), 7);
  EXPECT_EQ(losses.first_step().item<double>(), 7);
}

TEST(StepAgreement, OneRanksStopRequestStopsEveryRank) {
  auto comm = make_mpi_communicator();
  EXPECT_TRUE(agree_on_step(*comm, 1.0, comm->rank() == 0).stop);
  EXPECT_FALSE(agree_on_step(*comm, 1.0, false).stop);
}

}  // namespace
}  // namespace facetrain
