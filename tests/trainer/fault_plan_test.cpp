// The reliability tests' fault injection (trainer/fault_plan.h), set directly as a test does: each fault hits
// its rank at its step only, the stop signal becomes the training stop request, a kill is a SIGKILL.
#include <gtest/gtest.h>

#include <csignal>

#include "core/stop_signal.h"
#include "trainer/fault_plan.h"

namespace facetrain {
namespace {

TEST(FaultPlan, HitsItsRankAtItsStepOnly) {
  const FaultAt f{/*armed=*/true, /*rank=*/1, /*step=*/6};
  EXPECT_TRUE(f.hits(1, 6));
  EXPECT_FALSE(f.hits(0, 6));
  EXPECT_FALSE(f.hits(1, 5));
  EXPECT_FALSE(FaultAt{}.hits(0, 0));  // not armed: never, even at rank 0, step 0
}

TEST(FaultPlan, SignalAfterItsStepIsAStopRequest) {
  install_stop_handlers(SIGUSR1);
  reset_stop_request();
  FaultPlan plan;
  plan.signal = FaultAt{true, 0, 3};
  plan.after_step(0, 2);
  plan.after_step(1, 3);
  EXPECT_FALSE(stop_requested());
  plan.after_step(0, 3);
  EXPECT_TRUE(stop_requested());
  EXPECT_EQ(stop_signal(), SIGUSR1);
  reset_stop_request();
}

TEST(FaultPlan, EmptyPlanDoesNothing) {
  const FaultPlan plan;
  for (int64_t step = 0; step < 4; ++step) {
    plan.before_step(0, step);
    plan.after_step(0, step);
  }
  SUCCEED();
}

TEST(FaultPlanDeathTest, KillBeforeItsStepIsASigkill) {
  FaultPlan plan;
  plan.kill = FaultAt{true, 2, 6};
  plan.before_step(2, 5);  // another step: nothing
  EXPECT_EXIT(plan.before_step(2, 6), testing::KilledBySignal(SIGKILL), "");
}

}  // namespace
}  // namespace facetrain
