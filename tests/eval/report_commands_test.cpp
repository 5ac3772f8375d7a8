// The eval commands end to end under mpirun -np 1, 2 and 3 (the 11-image test split divides by neither 2 nor
// 3): metrics.json / predictions.csv and mined.csv must equal a single-rank computation made in-process on
// every rank (one ShardLoader over all images, one forward), so they are identical for every rank count and
// every image is counted once. Also: samples with a classifier, the subset store, and each bad input as a
// UserError (other model kind, image size that does not fit, empty selection, threshold outside (0, 1]).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "comm/communicator.h"
#include "core/error.h"
#include "launcher/commands/commands.h"
#include "datastore/loader.h"
#include "eval/loaded_model.h"
#include "eval/mining.h"
#include "report_fixtures.h"
#include "eval/metrics.h"
#include "lib/test_util.h"

namespace facetrain {
namespace {

using testing::read_text;

namespace fs = std::filesystem;

// The world communicator for the commands, created after MPI starts and freed before it ends.
class World : public ::testing::Environment {
 public:
  static ProcessContext& ctx() { return ctx_; }
  void SetUp() override {
    comm_ = make_mpi_communicator();
    ctx_.comm = comm_.get();
    ctx_.rank = comm_->rank();
    ctx_.world_size = comm_->size();
  }
  void TearDown() override { comm_.reset(); }

 private:
  std::unique_ptr<Communicator> comm_;
  static ProcessContext ctx_;
};
ProcessContext World::ctx_;
::testing::Environment* const kWorld = ::testing::AddGlobalTestEnvironment(new World);

// Runs a command like the launcher does: argv[0] names it, the rest are flags.
int run(int (*command)(int, char**, ProcessContext&), std::vector<std::string> args) {
  args.insert(args.begin(), "facetrain eval");
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  return command(static_cast<int>(args.size()), argv.data(), World::ctx());
}

std::string user_error_of(int (*command)(int, char**, ProcessContext&), const std::vector<std::string>& args) {
  try {
    run(command, args);
  } catch (const UserError& e) {
    return e.what();
  }
  return "";
}

std::vector<std::vector<std::string>> csv_rows(const std::string& path) {
  std::vector<std::vector<std::string>> rows;
  std::istringstream in(read_text(path));
  std::string line;
  while (std::getline(in, line)) {
    std::vector<std::string> fields;
    std::string field;
    bool quoted = false;
    for (size_t i = 0; i < line.size(); ++i) {
      const char c = line[i];
      if (quoted && c == '"' && i + 1 < line.size() && line[i + 1] == '"') {
        field += '"';
        ++i;
      } else if (c == '"') {
        quoted = !quoted;
      } else if (c == ',' && !quoted) {
        fields.push_back(field);
        field.clear();
      } else {
        field += c;
      }
    }
    fields.push_back(field);
    rows.push_back(fields);
  }
  return rows;
}

struct Reference {
  std::vector<int64_t> indices;
  torch::Tensor probs;   // N x K
  torch::Tensor labels;  // N
  double loss = 0;
};

// The single-rank computation: every selected image through one loader and one forward pass (with
// `flips`, also the mirror images, and the two probabilities averaged).
Reference reference_scores(const std::string& checkpoint, const std::string& store_path, Split split,
                           bool flips = false) {
  StoreReader store(store_path);
  Reference r;
  r.indices = store.split_indices(split);
  const LoadedModel model = load_model_for_eval(checkpoint, "", store.info(), torch::kCPU);
  ShardLoader loader(
      store_path, in_order_loader_options(r.indices, static_cast<int64_t>(r.indices.size()), Normalization::kMeanStd));
  Batch batch;
  EXPECT_TRUE(loader.next(&batch));
  torch::NoGradGuard no_grad;
  ImageClassifier& vit = model.need<ImageClassifier>("a classifier");
  const torch::Tensor logits = vit.logits(batch.images);
  r.probs = torch::softmax(logits, 1).contiguous();
  r.labels = batch.labels;
  r.loss = torch::nn::functional::cross_entropy(logits, batch.labels).item<double>();
  if (flips) {
    const torch::Tensor mirrored = torch::softmax(vit.logits(batch.images.flip({3})), 1);
    r.probs = ((r.probs + mirrored) / 2).contiguous();
    r.loss = torch::nn::functional::nll_loss(r.probs.log(), batch.labels).item<double>();
  }
  return r;
}

class EvalCommands : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    ProcessContext& ctx = World::ctx();
    root_ = fixtures::scratch_dir("eval_report_commands_np" + std::to_string(ctx.world_size));
    store_ = root_ + "/faces.h5";
    small_store_ = root_ + "/small.h5";
    vit_run_ = root_ + "/vit_run";
    dcgan_run_ = root_ + "/dcgan_run";
    if (ctx.rank == 0) {  // (rank 0 only) fixtures; the others wait at the barrier
      fs::remove_all(root_);
      fs::create_directories(root_);
      fixtures::StoreSpec spec;
      spec.identities = true;
      fixtures::write_store(store_, spec);
      fixtures::StoreSpec small;
      small.size = 4;
      small.count = 10;
      fixtures::write_store(small_store_, small);
      fixtures::write_vit_checkpoint(vit_run_, store_, 7, 100.0);
      fixtures::write_dcgan_checkpoint(dcgan_run_, store_, 8);
    }
    ctx.comm->barrier();
  }
  static std::string out(const std::string& name) { return root_ + "/" + name; }

  static std::string root_, store_, small_store_, vit_run_, dcgan_run_;
};
std::string EvalCommands::root_, EvalCommands::store_, EvalCommands::small_store_, EvalCommands::vit_run_,
    EvalCommands::dcgan_run_;

TEST_F(EvalCommands, MetricsEqualTheSingleRankComputation) {
  ASSERT_EQ(run(eval_metrics_command, {"--checkpoint", vit_run_, "--store", store_, "--split", "test", "--output",
                                       out("metrics"), "--batch", "2"}),
            0);
  const Reference ref = reference_scores(vit_run_, store_, Split::kTest);
  ASSERT_EQ(ref.indices.size(), 11u);
  const std::vector<float> flat(ref.probs.data_ptr<float>(), ref.probs.data_ptr<float>() + ref.probs.numel());
  const std::vector<int64_t> labels(ref.labels.data_ptr<int64_t>(), ref.labels.data_ptr<int64_t>() + 11);
  const ClassificationMetrics expected = classification_metrics(flat, labels, 3, ref.loss);

  const nlohmann::json j = nlohmann::json::parse(read_text(out("metrics") + "/metrics.json"));
  EXPECT_EQ(j["count"], 11);
  EXPECT_EQ(j["split"], "test");
  EXPECT_EQ(j["confusion"], nlohmann::json(expected.confusion));
  EXPECT_NEAR(j["loss"].get<double>(), expected.loss, 1e-5);
  EXPECT_DOUBLE_EQ(j["accuracy"].get<double>(), expected.accuracy);
  EXPECT_NEAR(j["macro"]["f1"].get<double>(), expected.macro_f1, 1e-12);
  EXPECT_NEAR(j["auc"].get<double>(), expected.auc, 1e-9);
  ASSERT_EQ(j["roc"]["curves"].size(), 3u);  // one-vs-rest for 3 classes
  for (int c = 0; c < 3; ++c) {
    EXPECT_EQ(j["per_class"][c]["support"], expected.per_class[c].support);
    EXPECT_NEAR(j["per_class"][c]["auc"].get<double>(), expected.per_class[c].auc, 1e-9);
  }

  // predictions.csv: every test image exactly once, in store order, with the reference's scores.
  const auto rows = csv_rows(out("metrics") + "/predictions.csv");
  ASSERT_EQ(rows.size(), 12u);
  EXPECT_EQ(rows[0], (std::vector<std::string>{"index", "file_name", "true_label", "predicted_label", "score_cat",
                                               "score_dog", "score_owl"}));
  for (size_t i = 0; i < 11; ++i) {
    const auto& row = rows[i + 1];
    ASSERT_EQ(row.size(), 7u);
    EXPECT_EQ(std::stoll(row[0]), ref.indices[i]);
    EXPECT_EQ(row[1], fixtures::fixture_filename(ref.indices[i]));  // image 9 has a comma and quotes
    EXPECT_EQ(std::stoll(row[2]), labels[i]);
    EXPECT_EQ(std::stoll(row[3]), ref.probs[i].argmax().item<int64_t>());
    for (int c = 0; c < 3; ++c) EXPECT_NEAR(std::stod(row[4 + c]), ref.probs[i][c].item<float>(), 1e-6);
  }
}

TEST_F(EvalCommands, FlipTtaAveragesEachImageWithItsMirror) {
  ASSERT_EQ(run(eval_metrics_command, {"--checkpoint", vit_run_, "--store", store_, "--split", "test", "--output",
                                       out("metrics_tta"), "--batch", "3", "--tta", "flip"}),
            0);
  const Reference plain = reference_scores(vit_run_, store_, Split::kTest);
  const Reference ref = reference_scores(vit_run_, store_, Split::kTest, /*flips=*/true);
  // The fixture's images are not mirror-symmetric, so the averaged scores differ from the plain ones.
  ASSERT_GT((ref.probs - plain.probs).abs().max().item<float>(), 1e-4);
  const nlohmann::json j = nlohmann::json::parse(read_text(out("metrics_tta") + "/metrics.json"));
  EXPECT_EQ(j["tta"], "flip");
  EXPECT_NEAR(j["loss"].get<double>(), ref.loss, 1e-5);
  const auto rows = csv_rows(out("metrics_tta") + "/predictions.csv");
  ASSERT_EQ(rows.size(), 12u);
  for (size_t i = 0; i < 11; ++i) {
    for (int c = 0; c < 3; ++c) EXPECT_NEAR(std::stod(rows[i + 1][4 + c]), ref.probs[i][c].item<float>(), 1e-6);
  }
}

TEST_F(EvalCommands, MinedListEqualsTheSingleRankComputation) {
  const Reference ref = reference_scores(vit_run_, store_, Split::kTest);
  // A threshold between two well-separated reference scores of class "dog", so rounding cannot move an image.
  std::vector<float> dog;
  for (int64_t i = 0; i < ref.probs.size(0); ++i) dog.push_back(ref.probs[i][1].item<float>());
  std::vector<float> sorted = dog;
  std::sort(sorted.begin(), sorted.end(), std::greater<float>());
  double threshold = 0;
  for (size_t k = 2; k + 1 < sorted.size() && threshold == 0; ++k) {
    if (sorted[k] - sorted[k + 1] > 1e-3) threshold = 0.5 * (sorted[k] + sorted[k + 1]);
  }
  ASSERT_GT(threshold, 0) << "fixture scores are too close together";
  const std::vector<MinedImage> expected = select_hits(ref.indices, dog, threshold);
  ASSERT_GE(expected.size(), 3u);

  char threshold_text[32];
  std::snprintf(threshold_text, sizeof(threshold_text), "%.9g", threshold);
  ASSERT_EQ(run(eval_mine_command,
                {"--checkpoint", vit_run_, "--store", store_, "--split", "test", "--class", "dog", "--threshold",
                 threshold_text, "--output", out("mine"), "--subset-store", out("mine/subset.h5"), "--batch", "3"}),
            0);
  const auto rows = csv_rows(out("mine") + "/mined.csv");
  ASSERT_EQ(rows.size(), expected.size() + 1);
  EXPECT_EQ(rows[0], (std::vector<std::string>{"index", "file_name", "score", "identity"}));
  for (size_t i = 0; i < expected.size(); ++i) {
    EXPECT_EQ(std::stoll(rows[i + 1][0]), expected[i].index);
    EXPECT_EQ(rows[i + 1][1], fixtures::fixture_filename(expected[i].index));
    EXPECT_NEAR(std::stod(rows[i + 1][2]), expected[i].score, 1e-6);
    EXPECT_EQ(std::stoll(rows[i + 1][3]), fixtures::fixture_identity(expected[i].index));
  }
  EXPECT_TRUE(fs::exists(out("mine") + "/contact_sheet.png"));
  StoreReader subset(out("mine/subset.h5"));
  EXPECT_EQ(subset.info().count, static_cast<int64_t>(expected.size()));

  // Zero hits is not an error: a header-only CSV, no contact sheet.
  if (sorted.front() < 1.0f) {
    std::snprintf(threshold_text, sizeof(threshold_text), "%.9g", std::nextafter(sorted.front(), 2.0f));
    ASSERT_EQ(run(eval_mine_command, {"--checkpoint", vit_run_, "--store", store_, "--split", "test", "--class", "1",
                                      "--threshold", threshold_text, "--output", out("mine_none")}),
              0);
    EXPECT_EQ(read_text(out("mine_none") + "/mined.csv"), "index,file_name,score,identity\n");
    EXPECT_FALSE(fs::exists(out("mine_none") + "/contact_sheet.png"));
  }
}

TEST_F(EvalCommands, SamplesWithAClassifierCountEverySampleOnce) {
  ASSERT_EQ(run(eval_samples_command, {"--checkpoint", dcgan_run_, "--output",         out("samples"),
                                       "--count",      "6",        "--interpolations", "2",
                                       "--steps",      "4",        "--classifier",     vit_run_,
                                       "--store",      store_,     "--classify-count", "13",
                                       "--batch",      "4",        "--seed",           "3"}),
            0);
  for (const char* name : {"samples.png", "interpolations_linear.png", "interpolations_spherical.png"}) {
    EXPECT_TRUE(fs::exists(out("samples") + "/" + name)) << name;
  }
  const nlohmann::json h = nlohmann::json::parse(read_text(out("samples") + "/class_histogram.json"));
  EXPECT_EQ(h["total"], 13);
  int64_t sum = 0;
  for (const auto& c : h["counts"]) sum += c.get<int64_t>();
  EXPECT_EQ(sum, 13);
  EXPECT_EQ(csv_rows(out("samples") + "/sample_classes.csv").size(), 14u);
  // Without --store the DCGAN's shape comes from its checkpoint.
  ASSERT_EQ(run(eval_samples_command, {"--checkpoint", dcgan_run_, "--output", out("samples_nostore"), "--count", "4",
                                       "--interpolations", "0"}),
            0);
  EXPECT_TRUE(fs::exists(out("samples_nostore") + "/samples.png"));
}

TEST_F(EvalCommands, BadInputIsOneUserError) {
  // A checkpoint of another model kind.
  EXPECT_NE(user_error_of(eval_metrics_command, {"--checkpoint", dcgan_run_, "--store", store_, "--output", out("x")})
                .find("holds a dcgan model"),
            std::string::npos);
  EXPECT_NE(user_error_of(eval_samples_command, {"--checkpoint", vit_run_, "--output", out("x")})
                .find("needs a generator (dcgan)"),
            std::string::npos);
  // A store whose image size does not fit the model.
  EXPECT_NE(user_error_of(eval_mine_command,
                          {"--checkpoint", vit_run_, "--store", small_store_, "--class", "0", "--output", out("x")})
                .find("trained on 8x8x3"),
            std::string::npos);
  // An empty selection.
  fixtures::StoreSpec spec;
  const std::string noval = root_ + "/noval.h5";
  if (World::ctx().rank == 0) {
    spec.with_val = false;
    fixtures::write_store(noval, spec);
  }
  World::ctx().comm->barrier();
  EXPECT_NE(user_error_of(eval_metrics_command,
                          {"--checkpoint", vit_run_, "--store", noval, "--split", "val", "--output", out("x")})
                .find("--split val"),
            std::string::npos);
  // A threshold outside (0, 1].
  for (const char* bad : {"0", "1.5", "-0.2", "nan"}) {
    EXPECT_NE(user_error_of(eval_mine_command, {"--checkpoint", vit_run_, "--store", store_, "--class", "0",
                                                "--threshold", bad, "--output", out("x")})
                  .find("--threshold"),
              std::string::npos)
        << bad;
  }
  // Missing flags and an unknown class.
  EXPECT_NE(user_error_of(eval_metrics_command, {"--store", store_, "--output", out("x")}).find("--checkpoint"),
            std::string::npos);
  EXPECT_NE(user_error_of(eval_mine_command,
                          {"--checkpoint", vit_run_, "--store", store_, "--class", "zebra", "--output", out("x")})
                .find("--class 'zebra'"),
            std::string::npos);
  EXPECT_NE(
      user_error_of(eval_samples_command, {"--checkpoint", dcgan_run_, "--output", out("x"), "--classifier", vit_run_})
          .find("--store"),
      std::string::npos);
}

}  // namespace
}  // namespace facetrain
