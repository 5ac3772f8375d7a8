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
#include "lib/test_util.h"

namespace facetrain {
namespace {

namespace fs = std::filesystem;

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
      testing::write_visual_fixture(dir_.string(), 8, 40);
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

  // Runs `command` with `flags` on every rank into <dir>/<name>_mpi, then on rank 0 alone into <name>_one,
  // and expects `files` to be byte-identical.
  template <typename Command>
  void expect_all_ranks_equal_one_rank(Command command, const std::string& name, std::vector<std::string> flags,
                                       const std::vector<std::string>& files) {
    flags.push_back("--output");
    std::vector<std::string> mpi_flags = flags, one_flags = flags;
    mpi_flags.push_back((dir_ / (name + "_mpi")).string());
    one_flags.push_back((dir_ / (name + "_one")).string());
    EXPECT_EQ(testing::run_command(command, name, mpi_flags, ctx_), 0);
    comm_->barrier();
    if (comm_->rank() != 0) return;
    testing::LocalCommunicator local;
    ProcessContext one = testing::context_for(local);
    ASSERT_EQ(testing::run_command(command, name, one_flags, one), 0);
    for (const auto& file : files) {
      EXPECT_EQ(testing::read_text((dir_ / (name + "_mpi") / file).string()),
                testing::read_text((dir_ / (name + "_one") / file).string()))
          << file << " differs between " << comm_->size() << " ranks and 1";
    }
  }

  std::unique_ptr<Communicator> comm_;
  ProcessContext ctx_;
  fs::path dir_;
  std::string store_path_;
};

TEST_F(VisualsMpi, MorphOnAllRanksEqualsOneRank) {
  // 5 images = 5 pairs: 2 ranks take 3 rounds (last one rank 0 alone), 3 ranks 2 rounds (rank 2 idle in the last).
  expect_all_ranks_equal_one_rank(eval_morph_command, "morph",
                                  {"--checkpoint", (dir_ / "vae").string(), "--store", store_path_, "--indices",
                                   "3,17,8,30,1", "--frames", "3", "--scale", "2"},
                                  {"morph.gif", "morph_strip.png", "morph.json"});
}

TEST_F(VisualsMpi, AttentionOnAllRanksEqualsOneRank) {
  // 7 images in batches of 2: 3 ranks get slices of 3, 2 and 2.
  expect_all_ranks_equal_one_rank(eval_attention_command, "attention",
                                  {"--checkpoint", (dir_ / "vit").string(), "--store", store_path_, "--indices",
                                   "0,5,9,13,21,34,39", "--batch-size", "2"},
                                  {"attention.json", "attention_grid.png", "image_34_rollout.png"});
}

TEST_F(VisualsMpi, BadInputFailsOnEveryRank) {
  const std::string out = (dir_ / "bad").string();
  EXPECT_THROW(testing::run_command(eval_morph_command, "morph",
                                    {"--checkpoint", (dir_ / "vae").string(), "--store", store_path_, "--indices",
                                     "1,40", "--output", out},
                                    ctx_),
               UserError);
  EXPECT_THROW(
      testing::run_command(eval_attention_command, "attention",
                           {"--checkpoint", (dir_ / "vae").string(), "--store", store_path_, "--output", out}, ctx_),
      UserError);
}

}  // namespace
}  // namespace facetrain
