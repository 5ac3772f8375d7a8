// Each training recipe's model FLOPs per image and step (TrainingTask::train_flops_per_image, the numerator of
// perf/tflops and perf/mfu), for the configs of configs/, against the hand counts of
// tests/models/flop_count_test.cpp: a classifier step is 3 forwards, a DCGAN step 3 G + 8 D, a VAE step 3.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstdlib>
#include <string>

#include "comm/communicator.h"
#include "core/config.h"
#include "models/flop_count.h"
#include "models/model_options.h"
#include "lib/repository_inputs.h"
#include "models/vae.h"
#include "trainer/task.h"

namespace facetrain {
namespace {

using testing::repository_config;
using testing::store_shape;

// The task the trainer makes for configs/<name> on a store of that shape.
double train_flops_of(const std::string& name, const StoreInfo& store) {
  const proto::RunConfig config = repository_config(name);
  std::unique_ptr<Communicator> control = make_mpi_communicator(), gradient = make_mpi_communicator();
  ProcessContext ctx;
  ctx.comm = control.get();
  const DataParallelOptions parallel = data_parallel_options(config);
  torch::manual_seed(0);
  return make_task(TaskInputs{config, ctx, store, "", parallel, *gradient})->train_flops_per_image();
}

TEST(TrainFlops, MainJobVitIsThreeForwards) {
  // 4,854,016 FLOPs forward (every token through every block, the standard count), x 3.
  EXPECT_DOUBLE_EQ(train_flops_of("vit-fashion-mnist.pbtxt", store_shape(28, 1, 10)), 3 * 4854016.0);
}

TEST(TrainFlops, DcganIsThreeGeneratorsAndEightDiscriminators) {
  // G 9,060,352 and D 8,654,848 FLOPs forward: G forward + backward 3 G; D on real and fake with backward 6 D,
  // D in the G step forward and input gradients 2 D: 27,181,056 + 69,238,784 = 96,419,840.
  EXPECT_DOUBLE_EQ(train_flops_of("dcgan-fashion-mnist.pbtxt", store_shape(32, 1, 10)), 96419840.0);
}

TEST(TrainFlops, VaeIsThreeForwards) {
  const StoreInfo store = store_shape(32, 1, 10);
  const proto::RunConfig config = repository_config("vae-fashion-mnist.pbtxt");  // no perceptual term
  Vae vae(vae_options_from(config, store));
  const double forward = count_forward_flops(*vae, [&] { vae->forward(torch::zeros({1, 1, 32, 32})); }).total();
  EXPECT_GT(forward, 1e6);
  EXPECT_DOUBLE_EQ(train_flops_of("vae-fashion-mnist.pbtxt", store), 3 * forward);
}

}  // namespace
}  // namespace facetrain
