// MPI tests of `eval attention` and `eval morph` (run under mpirun -np 1, 2, 3): the files rank 0 writes after
// ranks split the images / pairs are byte-identical to a one-rank run in the same process, also when the work
// does not divide evenly; bad input fails on every rank without a hang.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>

#include "core/error.h"
#include "datastore/fixtures.h"
#include "launcher/commands/commands.h"
#include "eval/visual_fixtures.h"

namespace facetrain {
namespace {

namespace fs = std::filesystem;

std::string file_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in.good()) << path;
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

class VisualsMpi : public ::testing::Test {
 protected:
  void SetUp() override {
    comm_ = make_mpi_communicator();
    ctx_ = testing::context_for(*comm_);
    // One directory for every rank: rank 0 picks the name and broadcasts it.
    torch::Tensor token = torch::zeros({1}, torch::kInt64);
    if (comm_->rank() == 0) token[0] = static_cast<int64_t>(std::random_device{}() & 0x7fffffff);
    comm_->broadcast_(token, 0);
    const char* binary_dir = std::getenv("FACETRAIN_BINARY_DIR");
    dir_ = fs::path(binary_dir ? binary_dir : fs::temp_directory_path().string()) / "tests" / "tmp" /
           ("visuals-np" + std::to_string(comm_->size()) + "-" + std::to_string(token[0].item<int64_t>()));
    store_path_ = (dir_ / "store.h5").string();
    if (comm_->rank() == 0) {
      fs::create_directories(dir_);
      testing::FixtureSpec spec;
      spec.count = 40;
      spec.height = spec.width = 8;
      spec.channels = 3;
      spec.classes = 2;
      testing::write_fixture_store(store_path_, spec);
      StoreReader store(store_path_);
      torch::manual_seed(8);
      Vit vit(vit_options_from(testing::tiny_vit_config(), store.info()));
      testing::write_model_checkpoint((dir_ / "vit").string(), vit.ptr(), testing::tiny_vit_config(), store.info());
      Vae vae(vae_options_from(testing::tiny_vae_config(), store.info()));
      testing::write_model_checkpoint((dir_ / "vae").string(), vae.ptr(), testing::tiny_vae_config(), store.info());
    }
    comm_->barrier();
  }

  void TearDown() override {
    comm_->barrier();
    if (comm_->rank() == 0) {
      std::error_code ec;
      fs::remove_all(dir_, ec);
    }
    comm_->barrier();
    comm_.reset();
  }

  std::unique_ptr<Communicator> comm_;
  ProcessContext ctx_;
  fs::path dir_;
  std::string store_path_;
};

TEST_F(VisualsMpi, MorphOnAllRanksEqualsOneRank) {
  // 5 images = 5 pairs: 2 ranks take 3 rounds (last one rank 0 alone), 3 ranks 2 rounds (rank 2 idle in the last).
  const std::vector<std::string> flags = {"--checkpoint", (dir_ / "vae").string(), "--store", store_path_,
                                          "--indices",    "3,17,8,30,1",           "--frames", "3",
                                          "--scale",      "2"};
  auto with_output = [&](const fs::path& out) {
    std::vector<std::string> f = flags;
    f.push_back("--output");
    f.push_back(out.string());
    return f;
  };
  EXPECT_EQ(testing::run_command(eval_morph_command, "morph", with_output(dir_ / "morph_mpi"), ctx_), 0);
  comm_->barrier();
  if (comm_->rank() == 0) {
    testing::LocalCommunicator local;
    ProcessContext one = testing::context_for(local);
    ASSERT_EQ(testing::run_command(eval_morph_command, "morph", with_output(dir_ / "morph_one"), one), 0);
    for (const char* file : {"morph.gif", "morph_strip.png", "morph.json"}) {
      EXPECT_EQ(file_bytes((dir_ / "morph_mpi" / file).string()), file_bytes((dir_ / "morph_one" / file).string()))
          << file << " differs between " << comm_->size() << " ranks and 1";
    }
  }
}

TEST_F(VisualsMpi, AttentionOnAllRanksEqualsOneRank) {
  // 7 images in batches of 2: 3 ranks get slices of 3, 2 and 2.
  const std::vector<std::string> flags = {"--checkpoint", (dir_ / "vit").string(), "--store", store_path_,
                                          "--indices", "0,5,9,13,21,34,39", "--batch-size", "2"};
  auto with_output = [&](const fs::path& out) {
    std::vector<std::string> f = flags;
    f.push_back("--output");
    f.push_back(out.string());
    return f;
  };
  EXPECT_EQ(testing::run_command(eval_attention_command, "attention", with_output(dir_ / "att_mpi"), ctx_), 0);
  comm_->barrier();
  if (comm_->rank() == 0) {
    testing::LocalCommunicator local;
    ProcessContext one = testing::context_for(local);
    ASSERT_EQ(testing::run_command(eval_attention_command, "attention", with_output(dir_ / "att_one"), one), 0);
    for (const char* file : {"attention.json", "attention_grid.png", "image_34_rollout.png"}) {
      EXPECT_EQ(file_bytes((dir_ / "att_mpi" / file).string()), file_bytes((dir_ / "att_one" / file).string()))
          << file << " differs between " << comm_->size() << " ranks and 1";
    }
  }
}

TEST_F(VisualsMpi, BadInputFailsOnEveryRank) {
  const std::string out = (dir_ / "bad").string();
  EXPECT_THROW(testing::run_command(eval_morph_command, "morph",
                                    {"--checkpoint", (dir_ / "vae").string(), "--store", store_path_, "--indices",
                                     "1,40", "--output", out},
                                    ctx_),
               UserError);
  EXPECT_THROW(testing::run_command(eval_attention_command, "attention",
                                    {"--checkpoint", (dir_ / "vae").string(), "--store", store_path_, "--output", out},
                                    ctx_),
               UserError);
}

}  // namespace
}  // namespace facetrain
