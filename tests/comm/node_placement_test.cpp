// node_placement() under mpirun on one machine: every rank is on this node, so the node size is the world
// size and the local ranks are 0..n-1 once each (their sum is n(n-1)/2), and they agree with Open MPI's own
// OMPI_COMM_WORLD_LOCAL_RANK.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstdlib>

#include "comm/communicator.h"

namespace facetrain {
namespace {

TEST(NodePlacement, OneNodeHoldsEveryRankOnce) {
  auto world = make_mpi_communicator();
  const NodePlacement node = node_placement();
  EXPECT_EQ(node.local_size, world->size());
  EXPECT_GE(node.local_rank, 0);
  EXPECT_LT(node.local_rank, node.local_size);
  torch::Tensor sum = torch::tensor({static_cast<int64_t>(node.local_rank)});
  world->all_reduce_sum_(sum);
  const int64_t n = world->size();
  EXPECT_EQ(sum.item<int64_t>(), n * (n - 1) / 2);
  if (const char* ompi = std::getenv("OMPI_COMM_WORLD_LOCAL_RANK")) EXPECT_EQ(node.local_rank, std::atoi(ompi));
}

}  // namespace
}  // namespace facetrain
