// Device placement: one GPU per node-local rank, the CPU without GPUs, and a clear error (naming the host and
// both counts) when a node runs more ranks than it has visible GPUs. The GPU count is a parameter, so this
// runs on a machine without GPUs.
#include <gtest/gtest.h>

#include "core/error.h"
#include "launcher/process.h"

namespace facetrain {
namespace {

TEST(Placement, OneGpuPerLocalRank) {
  for (int r = 0; r < 4; ++r) {
    const torch::Device d = choose_device(r, 4, /*visible_gpus=*/4, "node1");
    EXPECT_TRUE(d.is_cuda());
    EXPECT_EQ(d.index(), r);
  }
  EXPECT_EQ(choose_device(1, 2, 8, "node1").index(), 1);  // fewer ranks than GPUs: the first ones
}

TEST(Placement, NoGpuMeansCpu) {
  EXPECT_TRUE(choose_device(0, 3, 0, "node1").is_cpu());
  EXPECT_TRUE(choose_device(2, 3, 0, "node1").is_cpu());
}

TEST(Placement, MoreRanksThanGpusIsOneClearError) {
  try {
    choose_device(0, 4, 2, "node7");
    FAIL() << "4 ranks on 2 GPUs accepted";
  } catch (const UserError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("node7"), std::string::npos) << what;
    EXPECT_NE(what.find("4 ranks"), std::string::npos) << what;
    EXPECT_NE(what.find("2 GPUs"), std::string::npos) << what;
  }
}

}  // namespace
}  // namespace facetrain
