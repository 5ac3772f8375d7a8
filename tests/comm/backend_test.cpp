// The choice of the gradient communicator (distributed.backend): auto follows the model's device and the
// build, mpi always works, nccl without an NCCL build or without a GPU model is a UserError naming the field.
#include <gtest/gtest.h>

#include "comm/communicator.h"
#include "core/error.h"

namespace facetrain {
namespace {

TEST(GradientBackend, AutoIsNcclOnlyForAGpuModelInAnNcclBuild) {
  EXPECT_EQ(choose_gradient_backend("auto", /*model_on_gpu=*/true, /*nccl_built=*/true), GradientBackend::kNccl);
  EXPECT_EQ(choose_gradient_backend("auto", true, false), GradientBackend::kMpi);
  EXPECT_EQ(choose_gradient_backend("auto", false, true), GradientBackend::kMpi);
  EXPECT_EQ(choose_gradient_backend("auto", false, false), GradientBackend::kMpi);
}

TEST(GradientBackend, MpiOnTheCpuNcclOnlyWhereItRuns) {
  for (bool built : {false, true}) EXPECT_EQ(choose_gradient_backend("mpi", false, built), GradientBackend::kMpi);
  // MPI averages host memory: with the model on GPUs it is one line, not an internal check later.
  for (bool built : {false, true}) {
    try {
      choose_gradient_backend("mpi", true, built);
      ADD_FAILURE() << "mpi accepted with the model on a GPU";
    } catch (const UserError& e) {
      EXPECT_NE(std::string(e.what()).find("distributed.backend: mpi averages gradients in host memory"),
                std::string::npos)
          << e.what();
    }
  }
  EXPECT_EQ(choose_gradient_backend("nccl", true, true), GradientBackend::kNccl);
  for (auto [gpu, built] : {std::pair{false, true}, std::pair{true, false}, std::pair{false, false}}) {
    try {
      choose_gradient_backend("nccl", gpu, built);
      ADD_FAILURE() << "nccl accepted with gpu=" << gpu << " built=" << built;
    } catch (const UserError& e) {
      EXPECT_NE(std::string(e.what()).find("distributed.backend: nccl"), std::string::npos) << e.what();
    }
  }
  EXPECT_THROW(choose_gradient_backend("gloo", true, true), UserError);
}

TEST(GradientBackend, NamesRoundTrip) {
  EXPECT_STREQ(gradient_backend_name(GradientBackend::kMpi), "mpi");
  EXPECT_STREQ(gradient_backend_name(GradientBackend::kNccl), "nccl");
}

}  // namespace
}  // namespace facetrain
