// Device placement as a table: every way a cluster hands out GPUs (all of a node's GPUs visible to every rank,
// one GPU per rank, none) -> the device, and each placement that cannot work -> one line naming the host, the
// ranks and the counts. The views are parameters, so this runs on a machine without GPUs.
#include <gtest/gtest.h>

#include "core/error.h"
#include "launcher/process.h"

namespace facetrain {
namespace {

std::vector<std::string> gpus(int n, const std::string& node = "a") {
  std::vector<std::string> ids;
  for (int i = 0; i < n; ++i) ids.push_back(node + ":0000:1" + std::to_string(i) + ":00.0");
  return ids;
}

std::string error_of(int rank, const std::vector<GpuView>& views) {
  try {
    choose_device(rank, views);
  } catch (const UserError& e) {
    return e.what();
  }
  return "";
}

TEST(Placement, EveryRankSeesTheNodesGpusTakesItsLocalRank) {
  // mpirun on a workstation, srun --gpus-per-node=4: two nodes of 4 ranks, each rank sees its node's 4 GPUs.
  std::vector<GpuView> views;
  for (int r = 0; r < 8; ++r) views.push_back({r < 4 ? "n1" : "n2", gpus(4, r < 4 ? "n1" : "n2")});
  for (int r = 0; r < 8; ++r) {
    const torch::Device d = choose_device(r, views);
    EXPECT_TRUE(d.is_cuda());
    EXPECT_EQ(d.index(), r % 4) << "rank " << r;
  }
  // Fewer ranks than GPUs: the first ones.
  EXPECT_EQ(choose_device(1, {{"n1", gpus(8)}, {"n1", gpus(8)}}).index(), 1);
}

TEST(Placement, OneGpuPerRankTakesGpuZero) {
  // srun --gpus-per-task=1 (or --gpu-bind=single:1, or a per-rank CUDA_VISIBLE_DEVICES): each sees its own.
  const std::vector<GpuView> views{{"n1", {"0000:1b:00.0"}}, {"n1", {"0000:2c:00.0"}}, {"n1", {"0000:3d:00.0"}}};
  for (int r = 0; r < 3; ++r) EXPECT_EQ(choose_device(r, views), torch::Device(torch::kCUDA, 0)) << "rank " << r;
  // Two GPUs per task: the first of each.
  const std::vector<GpuView> pairs{{"n1", {"a", "b"}}, {"n1", {"c", "d"}}};
  EXPECT_EQ(choose_device(1, pairs), torch::Device(torch::kCUDA, 0));
}

TEST(Placement, NoGpuMeansCpu) {
  const std::vector<GpuView> views{{"n1", {}}, {"n1", {}}, {"n2", {}}};
  for (int r = 0; r < 3; ++r) EXPECT_TRUE(choose_device(r, views).is_cpu());
}

TEST(Placement, MoreRanksThanSharedGpusIsOneLine) {
  const std::vector<GpuView> views{{"node7", gpus(2)}, {"node7", gpus(2)}, {"node7", gpus(2)}, {"node7", gpus(2)}};
  const std::string what = error_of(0, views);
  EXPECT_NE(what.find("host node7 runs 4 ranks but sees 2 GPUs"), std::string::npos) << what;
}

TEST(Placement, RanksThatWouldShareAGpuAreNamed) {
  // A per-rank CUDA_VISIBLE_DEVICES that gives two ranks the same card.
  const std::vector<GpuView> views{{"n1", {"0000:1b:00.0"}}, {"n1", {"0000:2c:00.0"}}, {"n1", {"0000:1b:00.0"}}};
  const std::string what = error_of(2, views);
  EXPECT_NE(what.find("ranks 0 and 2 on host n1 would both drive GPU 0000:1b:00.0"), std::string::npos) << what;
  EXPECT_EQ(error_of(1, views), "");
}

TEST(Placement, SomeRanksWithoutGpusIsOneLineNamingThem) {
  // A node without GPUs in a GPU job (or one rank started without CUDA_VISIBLE_DEVICES' GPUs).
  const std::vector<GpuView> views{{"gpu1", gpus(2)}, {"gpu1", gpus(2)}, {"cpu9", {}}};
  for (int r = 0; r < 3; ++r) {
    const std::string what = error_of(r, views);
    EXPECT_NE(what.find("rank 2 on host cpu9 sees no GPU while rank 0 on host gpu1 sees 2"), std::string::npos) << what;
  }
}

}  // namespace
}  // namespace facetrain
