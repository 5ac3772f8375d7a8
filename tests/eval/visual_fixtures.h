// Fixtures for the eval attention/morph tests: tiny ViT and VAE checkpoints (tests/lib/checkpoint_fixtures.h),
// a one-rank communicator so a command can run in-process as "1 rank" next to an MPI run, and a helper that calls a
// command with a vector of flags.
#pragma once

#include <google/protobuf/text_format.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "datastore/store.h"
#include "comm/communicator.h"
#include "core/config.h"
#include "models/model_options.h"
#include "runtime/process_context.h"
#include "datastore/fixtures.h"
#include "lib/checkpoint_fixtures.h"

namespace facetrain::testing {

// A world of one: every collective is the identity (what a 1-rank MPI job computes).
class LocalCommunicator : public Communicator {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  std::string backend() const override { return "local"; }
  void all_reduce_sum_(torch::Tensor&, const std::string&) override {}
  std::unique_ptr<PendingCollective> all_reduce_sum_async_(torch::Tensor&, const std::string&) override {
    struct Done : PendingCollective {
      void wait() override {}
      bool test() override { return true; }
    };
    return std::make_unique<Done>();
  }
  std::unique_ptr<PendingCollective> all_reduce_mean_async_(torch::Tensor& tensor, const std::string& label) override {
    return all_reduce_sum_async_(tensor, label);  // a world of one: the mean is the tensor itself
  }
  void broadcast_(torch::Tensor&, int, const std::string&) override {}
  torch::Tensor all_gather(const torch::Tensor& tensor, const std::string&) override { return tensor.clone(); }
  void barrier(const std::string&) override {}
};

inline ProcessContext context_for(Communicator& comm) {
  ProcessContext ctx;
  ctx.comm = &comm;
  ctx.rank = comm.rank();
  ctx.world_size = comm.size();
  return ctx;
}

// Runs `command` as `facetrain eval <name> flags...`.
template <typename Command>
int run_command(Command command, const std::string& name, const std::vector<std::string>& flags, ProcessContext& ctx) {
  std::vector<std::string> words = {"facetrain eval " + name};
  words.insert(words.end(), flags.begin(), flags.end());
  std::vector<char*> argv;
  for (auto& w : words) argv.push_back(w.data());
  argv.push_back(nullptr);
  return command(static_cast<int>(words.size()), argv.data(), ctx);
}

inline proto::RunConfig config_from_text(const std::string& text) {
  proto::RunConfig c;
  if (!google::protobuf::TextFormat::ParseFromString(text, &c)) throw std::runtime_error("bad fixture config");
  return c;
}

// The run config of a tiny ViT (patch 2, width 16, 2 blocks, 2 heads) or VAE (latent 8, base width 4).
inline proto::RunConfig tiny_vit_config() {
  return config_from_text("name: 'tiny-vit' model { vit { patch_size: 2 width: 16 depth: 2 heads: 2 mlp_ratio: 2 } }");
}
inline proto::RunConfig tiny_vae_config() {
  return config_from_text("name: 'tiny-vae' model { vae { latent_size: 8 base_width: 4 } }");
}

// Writes a checkpoint of `module` (a ViT or VAE: registry name "model") through the format's owner
// (tests/lib/checkpoint_fixtures.h). Returns its path.
inline std::string write_model_checkpoint(const std::string& directory,
                                          const std::shared_ptr<torch::nn::Module>& module,
                                          const proto::RunConfig& config, const StoreInfo& store) {
  return write_test_checkpoint(directory, {{"model", module}}, config, store, 0);
}

// What the command tests of eval attention and eval morph run on: an 8x8 RGB store of `count` images of 2
// classes and a tiny ViT and VAE (seeded) checkpointed beside it (dir/vit, dir/vae), all under `dir`.
struct VisualFixture {
  std::string store_path, vit_checkpoint, vae_checkpoint;
  StoreInfo info;
  Vit vit{nullptr};
  Vae vae{nullptr};
};

inline VisualFixture write_visual_fixture(const std::string& dir, uint64_t seed, int64_t count = 30) {
  VisualFixture f;
  FixtureSpec spec;
  spec.count = count;
  spec.height = spec.width = 8;
  spec.classes = 2;
  f.store_path = dir + "/store.h5";
  write_fixture_store(f.store_path, spec);
  f.info = StoreReader(f.store_path).info();
  torch::manual_seed(seed);
  f.vit = Vit(vit_options_from(tiny_vit_config(), f.info));
  f.vit_checkpoint = write_model_checkpoint(dir + "/vit", f.vit.ptr(), tiny_vit_config(), f.info);
  f.vae = Vae(vae_options_from(tiny_vae_config(), f.info));
  f.vae_checkpoint = write_model_checkpoint(dir + "/vae", f.vae.ptr(), tiny_vae_config(), f.info);
  return f;
}

// A gtest fixture that runs one visual command (eval attention, eval morph) in-process, in a world of one,
// on write_visual_fixture's store and checkpoints.
class VisualCommandTest : public ::testing::Test {
 protected:
  VisualCommandTest(int (*command)(int, char**, ProcessContext&), std::string name, uint64_t seed)
      : command_(command), name_(std::move(name)), seed_(seed) {}

  void SetUp() override {
    const VisualFixture f = write_visual_fixture(dir_.path().string(), seed_);
    store_path_ = f.store_path;
    info_ = f.info;
    vit_checkpoint_ = f.vit_checkpoint;
    vae_checkpoint_ = f.vae_checkpoint;
    vit_ = f.vit;
  }

  int run(const std::vector<std::string>& flags) {
    ProcessContext ctx = context_for(comm_);
    return run_command(command_, name_, flags, ctx);
  }

  TempDir dir_;
  LocalCommunicator comm_;
  std::string store_path_, vit_checkpoint_, vae_checkpoint_;
  StoreInfo info_;
  Vit vit_{nullptr};

 private:
  int (*command_)(int, char**, ProcessContext&);
  std::string name_;
  uint64_t seed_;
};

}  // namespace facetrain::testing
