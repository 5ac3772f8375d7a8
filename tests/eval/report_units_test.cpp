// Single-process tests of the eval report helpers against hand-computed cases: mining order and threshold
// edges, mined.csv, metrics.json / predictions.csv forms, latent interpolation, the class histogram's
// entropy, split and class selection, CSV quoting, base64 (RFC 4648 vectors), the samples' normalization
// and the report's input errors (the report in a browser: report_browser_test.cpp).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <filesystem>
#include <limits>

#include "core/error.h"
#include "launcher/commands/flag_groups.h"
#include "eval/image_selection.h"
#include "eval/classification.h"
#include "eval/files.h"
#include "eval/report_html.h"
#include "eval/interpolation.h"
#include "eval/mining.h"
#include "report_fixtures.h"

namespace facetrain {
namespace {

std::vector<int64_t> hit_indices(const std::vector<MinedImage>& hits) {
  std::vector<int64_t> out;
  for (const auto& h : hits) out.push_back(h.index);
  return out;
}

TEST(Mining, SortedByScoreThenIndex) {
  const std::vector<int64_t> indices{10, 11, 12, 13, 14, 15};
  const std::vector<float> scores{0.5f, 0.99f, 0.7f, 0.99f, 0.2f, 0.999f};
  const auto hits = select_hits(indices, scores, 0.6);
  EXPECT_EQ(hit_indices(hits), (std::vector<int64_t>{15, 11, 13, 12}));  // 0.99 tie: 11 before 13
  EXPECT_FLOAT_EQ(hits[0].score, 0.999f);
  // The input order does not matter (scores may arrive gathered in any rank layout).
  const auto reversed = select_hits({15, 14, 13, 12, 11, 10}, {0.999f, 0.2f, 0.99f, 0.7f, 0.99f, 0.5f}, 0.6);
  EXPECT_EQ(hit_indices(reversed), hit_indices(hits));
}

TEST(Mining, ScoreExactlyAtThresholdPasses) {
  // 0.995 is not a float: a score equal to float(0.995) is "at the threshold" and passes; the next float
  // below it does not.
  const float at = static_cast<float>(0.995);
  const float below = std::nextafter(at, 0.0f);
  const auto hits = select_hits({0, 1, 2}, {below, at, 1.0f}, 0.995);
  EXPECT_EQ(hit_indices(hits), (std::vector<int64_t>{2, 1}));
}

TEST(Mining, ThresholdOneKeepsOnlyCertainScores) {
  const float almost = std::nextafter(1.0f, 0.0f);
  const auto hits = select_hits({0, 1, 2, 3}, {1.0f, almost, 0.5f, 1.0f}, 1.0);
  EXPECT_EQ(hit_indices(hits), (std::vector<int64_t>{0, 3}));
}

TEST(Mining, ThresholdOutsideZeroOneIsAUserError) {
  for (double bad :
       {0.0, -0.5, 1.0000001, 2.0, std::numeric_limits<double>::quiet_NaN(), std::numeric_limits<double>::infinity()}) {
    EXPECT_THROW(check_mining_threshold(bad), UserError) << bad;
    EXPECT_THROW(select_hits({0}, {0.5f}, bad), UserError) << bad;
  }
  try {
    check_mining_threshold(1.5, "--threshold");
    FAIL();
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find("--threshold"), std::string::npos) << e.what();
  }
  EXPECT_NO_THROW(check_mining_threshold(1.0));
  EXPECT_NO_THROW(check_mining_threshold(1e-9));
}

TEST(Mining, ZeroHitsIsAnEmptyList) {
  EXPECT_TRUE(select_hits({0, 1}, {0.1f, 0.2f}, 0.995).empty());
  EXPECT_EQ(mined_csv({}, {"a.png", "b.png"}, {}), "index,file_name,score\n");
}

TEST(Mining, CsvColumnsAndIdentity) {
  const std::vector<std::string> names{"a.png", "b, c.png", "d.png"};
  const std::vector<MinedImage> hits{{1, 0.75f}, {2, 0.5f}};
  EXPECT_EQ(mined_csv(hits, names, {}), "index,file_name,score\n1,\"b, c.png\",0.75\n2,d.png,0.5\n");
  EXPECT_EQ(mined_csv(hits, names, {7, 4990, 4979}),
            "index,file_name,score,identity\n1,\"b, c.png\",0.75,4990\n2,d.png,0.5,4979\n");
}

TEST(Files, CsvFieldQuoting) {
  EXPECT_EQ(csv_field("plain.png"), "plain.png");
  EXPECT_EQ(csv_field("a,b"), "\"a,b\"");
  EXPECT_EQ(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
  EXPECT_EQ(csv_field("line\nbreak"), "\"line\nbreak\"");
}

TEST(Files, Base64Rfc4648Vectors) {
  EXPECT_EQ(base64_encode(""), "");
  EXPECT_EQ(base64_encode("f"), "Zg==");
  EXPECT_EQ(base64_encode("fo"), "Zm8=");
  EXPECT_EQ(base64_encode("foo"), "Zm9v");
  EXPECT_EQ(base64_encode("foob"), "Zm9vYg==");
  EXPECT_EQ(base64_encode("fooba"), "Zm9vYmE=");
  EXPECT_EQ(base64_encode("foobar"), "Zm9vYmFy");
  EXPECT_EQ(base64_encode(std::string("\xff\xfe\x00", 3)), "//4A");
}

ClassifierScores hand_scores() {
  // Binary hand case (also tests/eval/metrics_test.cpp): labels 1,1,1,0,0; argmax 1,1,0,0,1.
  ClassifierScores s;
  s.indices = {4, 0, 1, 2, 3};
  s.classes = 2;
  s.probabilities = {0.2f, 0.8f, 0.3f, 0.7f, 0.6f, 0.4f, 0.9f, 0.1f, 0.45f, 0.55f};
  s.labels = {1, 1, 1, 0, 0};
  s.mean_loss = 0.5;
  return s;
}

TEST(MetricsFiles, BinaryJsonHasOneRocCurveAndTheConfusionMatrix) {
  const ClassifierScores s = hand_scores();
  const auto m = classification_metrics(s.probabilities, s.labels, 2, s.mean_loss);
  const nlohmann::json j = metrics_json(m, s, {"real", "fake"}, {{"split", "test"}});
  EXPECT_EQ(j["split"], "test");
  EXPECT_EQ(j["count"], 5);
  EXPECT_DOUBLE_EQ(j["accuracy"].get<double>(), 0.6);
  EXPECT_DOUBLE_EQ(j["auc"].get<double>(), 5.0 / 6);
  EXPECT_EQ(j["confusion"], nlohmann::json({{1, 1}, {1, 2}}));
  ASSERT_EQ(j["roc"]["curves"].size(), 1u);
  const auto& curve = j["roc"]["curves"][0];
  EXPECT_EQ(curve["class"], "fake");
  EXPECT_TRUE(curve["points"][0][2].is_null());  // the (0,0) point's threshold is +inf: null in JSON
  EXPECT_DOUBLE_EQ(curve["points"].back()[0].get<double>(), 1.0);
  EXPECT_DOUBLE_EQ(curve["points"].back()[1].get<double>(), 1.0);
  EXPECT_EQ(j["per_class"][1]["support"], 3);
}

TEST(MetricsFiles, UndefinedAucIsNullAndMulticlassHasOneCurvePerClass) {
  ClassifierScores s;
  s.indices = {0, 1};
  s.classes = 3;
  s.probabilities = {0.7f, 0.2f, 0.1f, 0.1f, 0.8f, 0.1f};
  s.labels = {0, 1};  // class 2 has no members: its AUC is undefined
  const auto m = classification_metrics(s.probabilities, s.labels, 3);
  const nlohmann::json j = metrics_json(m, s, {"a", "b", "c"}, nlohmann::json::object());
  EXPECT_EQ(j["roc"]["curves"].size(), 3u);
  EXPECT_TRUE(j["per_class"][2]["auc"].is_null());
  EXPECT_DOUBLE_EQ(j["auc"].get<double>(), 1.0);  // mean over the classes with a defined AUC
  EXPECT_NO_THROW(nlohmann::json::parse(j.dump()));
}

TEST(MetricsFiles, PredictionsCsvRowPerImageInSelectionOrder) {
  const ClassifierScores s = hand_scores();
  const std::vector<std::string> files{"f0", "f1", "f2", "f3", "f,4"};
  const std::string csv = predictions_csv(s, files, {"real", "fake"});
  EXPECT_EQ(csv,
            "index,file_name,true_label,predicted_label,score_real,score_fake\n"
            "4,\"f,4\",1,1,0.200000003,0.800000012\n"
            "0,f0,1,1,0.300000012,0.699999988\n"
            "1,f1,1,0,0.600000024,0.400000006\n"
            "2,f2,0,0,0.899999976,0.100000001\n"
            "3,f3,0,1,0.449999988,0.550000012\n");
}

TEST(MetricsFiles, TableNamesEveryClass) {
  const ClassifierScores s = hand_scores();
  const auto m = classification_metrics(s.probabilities, s.labels, 2, 0.5);
  const std::string table = metrics_table(m, {"real", "fake"});
  EXPECT_NE(table.find("accuracy 0.6000"), std::string::npos) << table;
  EXPECT_NE(table.find("ROC AUC 0.8333"), std::string::npos) << table;
  EXPECT_NE(table.find("fake"), std::string::npos);
  EXPECT_NE(table.back(), '\n');
}

TEST(Latent, LinearAndSphericalEndpointsAndMidpoint) {
  const torch::Tensor a = torch::tensor({3.0f, 0.0f}), b = torch::tensor({0.0f, 3.0f});
  for (bool spherical : {false, true}) {
    const torch::Tensor z = interpolation_latents(a.view({1, 2}), b.view({1, 2}), 5, spherical);
    ASSERT_EQ(z.sizes(), (std::vector<int64_t>{5, 2}));
    EXPECT_TRUE(torch::equal(z[0], a));
    EXPECT_TRUE(torch::equal(z[4], b));
  }
  // Spherical: the midpoint of two orthogonal vectors of norm 3 is at 45 degrees with norm 3.
  const torch::Tensor mid = slerp_latent(a, b, 0.5);
  EXPECT_NEAR(mid[0].item<float>(), 3.0 / std::sqrt(2.0), 1e-5);
  EXPECT_NEAR(mid[1].item<float>(), 3.0 / std::sqrt(2.0), 1e-5);
  // Linear: the chord's midpoint (1.5, 1.5).
  const torch::Tensor chord = lerp_latent(a, b, 0.5);
  EXPECT_NEAR(chord[0].item<float>(), 1.5, 1e-6);
  // Parallel vectors fall back to linear interpolation (no division by sin 0).
  const torch::Tensor p = slerp_latent(a, a * 2, 0.5);
  EXPECT_NEAR(p[0].item<float>(), 4.5, 1e-5);
  EXPECT_FALSE(torch::isnan(p).any().item<bool>());
}

TEST(Latent, StepsBelowTwoIsAUserError) {
  EXPECT_THROW(interpolation_latents(torch::zeros({1, 2}), torch::ones({1, 2}), 1, false), UserError);
}

TEST(Latent, ClassHistogramEntropy) {
  const auto uniform = class_histogram({0, 1, 2, 3}, {"a", "b", "c", "d"});
  EXPECT_DOUBLE_EQ(uniform.entropy_bits, 2.0);
  EXPECT_DOUBLE_EQ(uniform.max_entropy_bits, 2.0);
  const auto collapsed = class_histogram({1, 1, 1}, {"a", "b", "c"});
  EXPECT_DOUBLE_EQ(collapsed.entropy_bits, 0.0);
  EXPECT_EQ(collapsed.counts, (std::vector<int64_t>{0, 3, 0}));
  // p = (1/2, 1/4, 1/4): H = 1/2 + 2 * 1/4 * 2 = 1.5 bits.
  const auto mixed = class_histogram({0, 0, 1, 2}, {"a", "b", "c"});
  EXPECT_DOUBLE_EQ(mixed.entropy_bits, 1.5);
  const nlohmann::json j = class_histogram_json(mixed);
  EXPECT_EQ(j["total"], 4);
  EXPECT_DOUBLE_EQ(j["fractions"][0].get<double>(), 0.5);
}

TEST(Latent, GeneratedSamplesNormalizedLikeTheLoader) {
  StoreInfo info;
  info.mean = {0.5f};
  info.std = {0.25f};
  // -1 -> pixel 0, 1 -> pixel 255, 0 -> pixel round(127.5) = 128.
  const torch::Tensor x = torch::tensor({-1.0f, 0.0f, 1.0f}).view({1, 1, 1, 3});
  const torch::Tensor unit = generated_to_classifier_input(x, info, Normalization::kUnit);
  EXPECT_FLOAT_EQ(unit[0][0][0][1].item<float>(), 128.0f / 255.0f);
  const torch::Tensor standardized = generated_to_classifier_input(x, info, Normalization::kMeanStd);
  EXPECT_NEAR(standardized[0][0][0][0].item<float>(), (0.0 - 0.5) / 0.25, 1e-6);
  EXPECT_NEAR(standardized[0][0][0][2].item<float>(), (1.0 - 0.5) / 0.25, 1e-6);
  StoreInfo no_stats;
  EXPECT_THROW(generated_to_classifier_input(x, no_stats, Normalization::kMeanStd), UserError);
}

class StoreSelection : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fixtures::scratch_dir("eval_report_units");
    std::filesystem::create_directories(dir_);
    fixtures::StoreSpec spec;
    spec.with_val = false;
    path_ = dir_ + "/noval.h5";
    fixtures::write_store(path_, spec);
  }
  std::string dir_, path_;
};

TEST_F(StoreSelection, SplitsAllAndEmptySelection) {
  StoreReader store(path_);
  EXPECT_EQ(select_store_indices(store, "all").size(), 56u);
  EXPECT_EQ(select_store_indices(store, "test").size(), 11u);
  try {
    select_store_indices(store, "val", "--split");
    FAIL() << "an empty split must be an error";
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find("--split val"), std::string::npos) << e.what();
  }
  EXPECT_THROW(select_store_indices(store, "validation"), UserError);
}

TEST_F(StoreSelection, ClassByNameOrIndex) {
  StoreReader store(path_);
  EXPECT_EQ(parse_class_flag(store.info(), "dog"), 1);
  EXPECT_EQ(parse_class_flag(store.info(), "2"), 2);
  EXPECT_THROW(parse_class_flag(store.info(), "3"), UserError);
  EXPECT_THROW(parse_class_flag(store.info(), "Dog"), UserError);
  EXPECT_THROW(parse_class_flag(store.info(), "1x"), UserError);
}

TEST_F(StoreSelection, SubsetStoreKeepsLayoutAndRecords) {
  fixtures::StoreSpec spec;
  spec.identities = true;
  const std::string source_path = dir_ + "/ids.h5";
  fixtures::write_store(source_path, spec);
  StoreReader source(source_path);
  const std::vector<MinedImage> hits{{40, 0.99f}, {9, 0.98f}, {3, 0.97f}};
  const std::string subset_path = dir_ + "/subset.h5";
  std::filesystem::remove(subset_path);
  EXPECT_EQ(write_subset_store(source, hits, subset_path, /*keep_splits=*/false, /*overwrite=*/false), 3);
  EXPECT_THROW(write_subset_store(source, hits, subset_path, false, false), UserError);  // exists
  StoreReader subset(subset_path);
  EXPECT_EQ(subset.info().count, 3);
  EXPECT_EQ(subset.info().class_names, source.info().class_names);
  EXPECT_TRUE(subset.info().has_identities);
  EXPECT_EQ(subset.filenames(), (std::vector<std::string>{fixtures::fixture_filename(3), fixtures::fixture_filename(9),
                                                          fixtures::fixture_filename(40)}));
  EXPECT_EQ(subset.identities(), (std::vector<int32_t>{fixtures::fixture_identity(3), fixtures::fixture_identity(9),
                                                       fixtures::fixture_identity(40)}));
  EXPECT_EQ(subset.split_indices(Split::kTrain).size(), 3u);
  EXPECT_EQ(subset.labels(), (std::vector<int64_t>{0, 0, 1}));
  std::vector<uint8_t> a(static_cast<size_t>(source.image_bytes())), b(a.size());
  const int64_t nine = 9, one = 1;
  source.read_images(&nine, 1, a.data());
  subset.read_images(&one, 1, b.data());
  EXPECT_EQ(a, b);
  // keep_splits: image 9 is a test image (9 % 5 == 4), 3 a val image.
  EXPECT_EQ(write_subset_store(source, hits, subset_path, /*keep_splits=*/true, /*overwrite=*/true), 3);
  StoreReader kept(subset_path);
  EXPECT_EQ(kept.split_indices(Split::kTest), (std::vector<int64_t>{1}));
  EXPECT_EQ(kept.split_indices(Split::kVal), (std::vector<int64_t>{0}));
}

TEST_F(StoreSelection, ContactSheetSizeFollowsTheHitCount) {
  StoreReader store(path_);
  std::vector<MinedImage> hits;
  for (int64_t i = 0; i < 7; ++i) hits.push_back({i, 1.0f});
  const std::string sheet = dir_ + "/sheet.png";
  EXPECT_EQ(write_contact_sheet(store, hits, 5, 0, sheet), 5);  // capped at 5: 3 columns x 2 rows
  const std::string bytes = read_file_bytes(sheet, "test");
  ASSERT_GT(bytes.size(), 24u);
  auto be32 = [&](size_t at) {
    return (uint32_t(uint8_t(bytes[at])) << 24) | (uint32_t(uint8_t(bytes[at + 1])) << 16) |
           (uint32_t(uint8_t(bytes[at + 2])) << 8) | uint32_t(uint8_t(bytes[at + 3]));
  };
  EXPECT_EQ(be32(16), 3u * 8 + 4 * 2);  // PNG IHDR width: 3 images of 8 px and 4 gaps of 2 px
  EXPECT_EQ(be32(20), 2u * 8 + 3 * 2);
  EXPECT_EQ(write_contact_sheet(store, {}, 5, 0, dir_ + "/none.png"), 0);
  EXPECT_FALSE(std::filesystem::exists(dir_ + "/none.png"));
}

TEST(ReportInputs, BadFoldersAndMissingChartJsAreUserErrors) {
  ReportOptions options;
  options.run_dir = "/nonexistent/run";
  EXPECT_THROW(render_report_html(options, nullptr), UserError);
  options.run_dir = "";
  options.eval_dirs = {"/nonexistent/eval"};
  EXPECT_THROW(render_report_html(options, nullptr), UserError);
  options.eval_dirs = {};
  options.chartjs_path = "/nonexistent/chart.min.js";
  try {
    render_report_html(options, nullptr);
    FAIL();
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find("libjs-chart.js"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace facetrain
