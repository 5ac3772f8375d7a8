// The training loop's per-step agreement (trainer/step_agreement.h) on 1, 2 and 3 ranks: every rank gets
// the same mean loss, the count of non-finite ranks and the stop request of any rank.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <stdexcept>

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

TEST(StepAgreement, OneRanksStopRequestStopsEveryRank) {
  auto comm = make_mpi_communicator();
  EXPECT_TRUE(agree_on_step(*comm, 1.0, comm->rank() == 0).stop);
  EXPECT_FALSE(agree_on_step(*comm, 1.0, false).stop);
}

}  // namespace
}  // namespace facetrain
