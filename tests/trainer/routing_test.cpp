// The two communicators of a training run (mpirun -np 2/3): the trainer's ViT task, built as the trainer
// builds it, with a control and a gradient communicator that each fail the test on the other's traffic
// (tests/lib/routing_communicator.h). Its steps send nothing over the control communicator, and N ranks
// end with the parameters of ONE model trained on the union batch (the gold test, two-communicator form),
// also with class weights (the weighted mean over the global batch, not the mean of per-rank weighted means).
#include <gtest/gtest.h>
#include <google/protobuf/text_format.h>
#include <torch/torch.h>

#include <sstream>

#include "comm/communicator.h"
#include "lib/routing_communicator.h"
#include "models/model_options.h"
#include "trainer/optim.h"
#include "trainer/task.h"

namespace facetrain {
namespace {

using testing::RoutingCommunicator;

torch::Tensor flat(const std::vector<torch::Tensor>& tensors) {
  std::vector<torch::Tensor> parts;
  for (const auto& t : tensors) parts.push_back(t.detach().reshape({-1}));
  return torch::cat(parts);
}

// Trains the task 3 steps on N ranks and one reference model on the union batch; with `weighted`, the loss is
// weighted by class (a rank's weight sum differs from the others': the global weighted mean is the gold).
void check_task_against_one_model(bool weighted) {
  torch::set_num_threads(1);
  RoutingCommunicator control(make_mpi_communicator(), RoutingCommunicator::Role::kControl);
  RoutingCommunicator gradient(make_mpi_communicator(), RoutingCommunicator::Role::kGradient);
  const int n = control.size(), r = control.rank();

  proto::RunConfig config;
  ASSERT_TRUE(google::protobuf::TextFormat::ParseFromString(
      "model { vit { patch_size: 4 width: 16 depth: 2 heads: 2 } } optimizer { kind: 'adamw' lr: 0.01 }", &config));
  config.mutable_model()->mutable_vit()->set_class_weights(weighted);
  StoreInfo input;
  input.height = input.width = 8;
  input.channels = 1;
  input.class_names = {"a", "b", "c"};
  input.class_weights = {0.5f, 1.0f, 3.0f};
  input.mean = {0.5f};
  input.std = {0.25f};
  ProcessContext ctx;
  ctx.comm = &control;
  ctx.rank = r;
  ctx.world_size = n;
  const DataParallelOptions parallel;

  torch::manual_seed(100 + r);  // each rank initialises differently; broadcast_state makes them rank 0's
  std::unique_ptr<TrainingTask> task = make_task(TaskInputs{config, ctx, input, "", parallel, gradient});
  const int control_ops_before = control.operations();
  task->broadcast_state();

  torch::manual_seed(100);
  Vit reference(vit_options_from(config, input));  // rank 0's initialisation
  const DecayGroups groups = weight_decay_groups(*reference, WeightDecayRule(config.optimizer()));
  auto reference_optimizer = make_optimizer(config.optimizer(), groups.groups, groups.weight_decay);

  constexpr int kSteps = 3, kPerRank = 4;
  torch::manual_seed(7);  // the same data on every rank
  const torch::Tensor x = torch::randn({kSteps, kPerRank * n, 1, 8, 8});
  const torch::Tensor y = torch::randint(0, 3, {kSteps, kPerRank * n}, torch::kInt64);
  for (int s = 0; s < kSteps; ++s) {
    Batch mine;
    mine.images = x[s].narrow(0, r * kPerRank, kPerRank);
    mine.labels = y[s].narrow(0, r * kPerRank, kPerRank);
    StepTimes times;
    task->train_step({mine}, 0.01, s, &times);

    reference->train();
    reference_optimizer->zero_grad();
    auto options = torch::nn::functional::CrossEntropyFuncOptions();
    if (weighted) options.weight(torch::tensor(input.class_weights));
    torch::nn::functional::cross_entropy(reference->forward(x[s]), y[s], options).backward();
    reference_optimizer->step();
  }
  // Training steps use no control collective: a weighted one's global weight sum travels on the gradient
  // communicator, on the device with the labels (no host read).
  EXPECT_EQ(control.operations(), control_ops_before) << "training steps used the control communicator";
  EXPECT_GT(gradient.operations(), kSteps) << "the gradient buckets did not use the gradient communicator";

  // The task's model, read back from its checkpoint state, against the one model on the union batch.
  torch::serialize::OutputArchive out;
  task->save(out);
  std::ostringstream bytes;
  out.save_to(bytes);
  const std::string payload = bytes.str();
  torch::serialize::InputArchive in, model_archive;
  in.load_from(payload.data(), payload.size());
  in.read("model", model_archive);
  Vit trained(vit_options_from(config, input));
  trained->load(model_archive);
  const torch::Tensor got = flat(trained->parameters()), want = flat(reference->parameters());
  // Adam divides by the gradient RMS, so float rounding of a 3-way mean moves a weight by ~1e-5; a routing
  // or averaging mistake moves it by ~lr = 1e-2.
  EXPECT_TRUE(torch::allclose(got, want, /*rtol=*/1e-4, /*atol=*/1e-4))
      << "max difference " << (got - want).abs().max().item<double>();
}

TEST(Routing, TaskStepsUseOnlyTheGradientCommunicatorAndMatchOneModel) { check_task_against_one_model(false); }

TEST(Routing, ClassWeightedLossIsTheWeightedMeanOfTheGlobalBatch) { check_task_against_one_model(true); }

}  // namespace
}  // namespace facetrain
