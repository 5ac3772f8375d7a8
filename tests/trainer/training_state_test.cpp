// Checkpoints belong to no device and loading keeps the live tensors: an archive of a module and its AdamW
// state holds only CPU tensors, and loading it back copies into the same tensors (same TensorImpl, same
// storage) with the values saved, so optimizer state, EMA shadows and gradient-bucket hooks stay valid; a
// fresh optimizer gets each parameter's state by its place (the layout both LibTorch versions read).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <sstream>
#include <string>

#include "core/config.pb.h"
#include "models/checkpoint.h"
#include "trainer/multi_tensor_adam.h"
#include "trainer/optim.h"
#include "trainer/precision.h"

namespace facetrain {
namespace {

struct Net : torch::nn::Module {
  Net() : fc(register_module("fc", torch::nn::Linear(4, 3))), bn(register_module("bn", torch::nn::BatchNorm1d(3))) {}
  torch::Tensor forward(const torch::Tensor& x) { return bn(fc(x)); }
  torch::nn::Linear fc;
  torch::nn::BatchNorm1d bn;
};

std::vector<torch::Tensor> state_of(Net& net, torch::optim::Optimizer& optimizer) {
  std::vector<torch::Tensor> out;
  for (const auto& p : net.parameters()) out.push_back(p);
  for (const auto& b : net.buffers()) out.push_back(b);
  for (auto& entry : optimizer.state()) {
    auto& s = static_cast<torch::optim::AdamWParamState&>(*entry.second);
    out.push_back(s.exp_avg());
    out.push_back(s.exp_avg_sq());
  }
  return out;
}

auto state_key(torch::optim::Optimizer& optimizer, const torch::Tensor& p) {
  return optimizer_state_key(optimizer.state(), p);
}

void train_a_step(Net& net, torch::optim::Optimizer& optimizer) {
  optimizer.zero_grad();
  net.forward(torch::randn({8, 4})).pow(2).mean().backward();
  optimizer.step();
}

TEST(TrainingState, ArchiveHoldsCpuTensorsAndLoadKeepsTheLiveTensors) {
  torch::manual_seed(1);
  Net net;
  proto::OptimizerConfig config;
  config.set_kind("adamw");
  config.set_lr(0.1f);
  auto optimizer = make_optimizer(config, net.parameters());
  LossScaler scaler(false);
  train_a_step(net, *optimizer);

  torch::serialize::OutputArchive out;
  save_training_state(out, "model", "", net, *optimizer, scaler);
  std::ostringstream bytes;
  out.save_to(bytes);
  std::vector<torch::Tensor> saved;
  for (const auto& t : state_of(net, *optimizer)) saved.push_back(t.detach().clone());

  // Everything in the archive is on the CPU (read back without naming a device).
  torch::serialize::InputArchive check;
  std::istringstream check_in(bytes.str());
  check.load_from(check_in);
  torch::serialize::InputArchive module_archive;
  ASSERT_TRUE(check.try_read("model", module_archive));
  torch::Tensor weight;
  torch::serialize::InputArchive fc;
  ASSERT_TRUE(module_archive.try_read("fc", fc));
  ASSERT_TRUE(fc.try_read("weight", weight));
  EXPECT_TRUE(weight.device().is_cpu());

  // Train on, then load: the same tensors (identity and storage) hold the saved values again.
  train_a_step(net, *optimizer);
  const std::vector<torch::Tensor> live = state_of(net, *optimizer);
  std::vector<const void*> storages;
  for (const auto& t : live) storages.push_back(t.storage().data());
  torch::serialize::InputArchive in;
  std::istringstream in_bytes(bytes.str());
  in.load_from(in_bytes, torch::Device(torch::kCPU));
  load_training_state(in, "model", "", net, *optimizer, scaler);
  const std::vector<torch::Tensor> after = state_of(net, *optimizer);
  ASSERT_EQ(after.size(), saved.size());
  for (size_t i = 0; i < after.size(); ++i) {
    EXPECT_TRUE(torch::equal(after[i], saved[i])) << "tensor " << i << " does not hold the saved values";
  }
  // Module tensors and optimizer state are the same objects with the same storage.
  for (size_t i = 0; i < after.size(); ++i) {
    EXPECT_EQ(after[i].unsafeGetTensorImpl(), live[i].unsafeGetTensorImpl()) << "tensor " << i << " was replaced";
    EXPECT_EQ(after[i].storage().data(), storages[i]) << "tensor " << i << " got new storage";
  }
}

// What differs between two parameters' optimizer states ("" when nothing): step counts and every state tensor.
std::string state_difference(torch::optim::OptimizerParamState& a, torch::optim::OptimizerParamState& b) {
  auto same = [](const torch::Tensor& x, const torch::Tensor& y) {
    return x.defined() == y.defined() && (!x.defined() || torch::equal(x, y));
  };
  if (auto* x = dynamic_cast<torch::optim::AdamWParamState*>(&a)) {
    auto& y = dynamic_cast<torch::optim::AdamWParamState&>(b);
    if (x->step() != y.step()) return "step";
    if (!same(x->exp_avg(), y.exp_avg()) || !same(x->exp_avg_sq(), y.exp_avg_sq())) return "moments";
  } else if (auto* adam = dynamic_cast<torch::optim::AdamParamState*>(&a)) {
    auto& y = dynamic_cast<torch::optim::AdamParamState&>(b);
    if (adam->step() != y.step()) return "step";
    if (!same(adam->exp_avg(), y.exp_avg()) || !same(adam->exp_avg_sq(), y.exp_avg_sq())) return "moments";
  } else {
    auto& sgd = dynamic_cast<torch::optim::SGDParamState&>(a);
    if (!same(sgd.momentum_buffer(), dynamic_cast<torch::optim::SGDParamState&>(b).momentum_buffer()))
      return "momentum";
  }
  return "";
}

// A fresh optimizer (a resumed run's) gets each parameter's state by the parameter's place in its group, not
// by an address written into the archive: for every optimizer kind and parameter group, the saved values.
TEST(TrainingState, AFreshOptimizerGetsEachParametersOwnState) {
  for (const char* kind : {"adamw", "adam", "sgd"}) {
    torch::manual_seed(2);
    Net net;
    proto::OptimizerConfig config;
    config.set_kind(kind);
    auto optimizer = make_optimizer(config, net.parameters());
    LossScaler scaler(false);
    train_a_step(net, *optimizer);
    train_a_step(net, *optimizer);
    torch::serialize::OutputArchive out;
    save_training_state(out, "model", "", net, *optimizer, scaler);
    std::ostringstream bytes;
    out.save_to(bytes);

    auto fresh = make_optimizer(config, net.parameters());
    ASSERT_TRUE(fresh->state().empty());
    torch::serialize::InputArchive in;
    std::istringstream in_bytes(bytes.str());
    in.load_from(in_bytes, torch::Device(torch::kCPU));
    load_training_state(in, "model", "", net, *fresh, scaler);
    ASSERT_EQ(fresh->state().size(), net.parameters().size()) << kind;
    for (const auto& group : optimizer->param_groups()) {
      for (const auto& p : group.params()) {
        auto& trained = *optimizer->state().at(state_key(*optimizer, p));
        auto& loaded = *fresh->state().at(state_key(*fresh, p));
        EXPECT_EQ(state_difference(trained, loaded), "") << kind << ", parameter of shape " << p.sizes();
      }
    }
  }
}

TEST(TrainingState, AnEntryOfAnotherShapeIsOneLine) {
  Net net;
  torch::serialize::OutputArchive out;
  torch::nn::Linear other(5, 3);
  save_module_copy(out, *other);
  std::ostringstream bytes;
  out.save_to(bytes);
  torch::serialize::InputArchive in;
  std::istringstream in_bytes(bytes.str());
  in.load_from(in_bytes);
  try {
    load_module_in_place(in, *net.fc, "run.ckpt");
    FAIL() << "a 3x5 weight loaded into a 3x4 one";
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find("run.ckpt: weight is [3, 5] in the file, [3, 4] in the model"),
              std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace facetrain
