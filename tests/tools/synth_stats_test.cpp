// Tests of `facetrain synth` (determinism by seed and across thread counts, class balance, split fractions,
// attributes) and `facetrain stats` (counts, weights, mean/std against a direct computation over the pixels).
#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "datastore/store.h"
#include "tests/tools/fixtures.h"
#include "launcher/commands/commands.h"
#include "tools/stats.h"
#include "tools/synth.h"

namespace facetrain {
namespace {

using testing::Argv;
using testing::TempDir;
namespace fs = std::filesystem;

std::vector<uint8_t> all_pixels(StoreReader& reader) {
  std::vector<uint8_t> pixels(static_cast<size_t>(reader.info().count * reader.image_bytes()));
  reader.read_range(0, reader.info().count, pixels.data());
  return pixels;
}

TEST(Synth, RenderIsAPureFunctionOfSeedAndIndex) {
  std::vector<uint8_t> a(64 * 64 * 3), b(64 * 64 * 3), c(64 * 64 * 3);
  const SynthFace fa = render_synth_face(7, 123, 64, 0.1, 0.1, a.data());
  const SynthFace fb = render_synth_face(7, 123, 64, 0.1, 0.1, b.data());
  EXPECT_EQ(a, b);
  EXPECT_EQ(fa.smiling, fb.smiling);
  EXPECT_EQ(fa.glasses, fb.glasses);
  render_synth_face(8, 123, 64, 0.1, 0.1, c.data());
  EXPECT_NE(a, c);
  render_synth_face(7, 124, 64, 0.1, 0.1, c.data());
  EXPECT_NE(a, c);
  // Split fractions choose the split only; the picture stays.
  render_synth_face(7, 123, 64, 0.3, 0.3, c.data());
  EXPECT_EQ(a, c);
}

TEST(Synth, SameSeedSameBytesForAnyThreadCount) {
  TempDir dir;
  for (const auto& [name, threads] :
       std::vector<std::pair<std::string, std::string>>{{"one.h5", "1"}, {"two.h5", "2"}}) {
    Argv argv("facetrain synth", {"--output", dir / name, "--count", "300", "--size", "32", "--seed", "42", "--threads",
                                  threads, "--quiet"});
    ASSERT_EQ(synth_command(argv.argc(), argv.argv()), 0);
  }
  StoreReader one(dir / "one.h5"), two(dir / "two.h5");
  EXPECT_EQ(all_pixels(one), all_pixels(two));
  EXPECT_EQ(one.labels(), two.labels());
  EXPECT_EQ(one.splits(), two.splits());
  EXPECT_EQ(one.filenames(), two.filenames());
  // The store holds exactly what render_synth_face draws.
  std::vector<uint8_t> expected(32 * 32 * 3), got(32 * 32 * 3);
  for (int64_t i : {0, 150, 299}) {
    const SynthFace f = render_synth_face(42, i, 32, 0.1, 0.1, expected.data());
    one.read_range(i, i + 1, got.data());
    EXPECT_EQ(got, expected) << i;
    EXPECT_EQ(one.labels()[static_cast<size_t>(i)], f.smiling ? 1 : 0);
  }
}

TEST(Synth, ClassesBalancedSplitsAtTheirFractionsAttributesStored) {
  TempDir dir;
  SynthOptions o;
  o.output = dir / "g.h5";
  o.count = 2000;
  o.size = 24;
  o.seed = 5;
  o.task = SynthTask::kGlasses;
  o.val_fraction = 0.2;
  o.test_fraction = 0.1;
  o.quiet = true;
  const SynthSummary s = run_synth(o);
  StoreReader reader(o.output);
  EXPECT_EQ(reader.info().class_names, (std::vector<std::string>{"no_glasses", "glasses"}));
  EXPECT_EQ(reader.info().attribute_names, (std::vector<std::string>{"Smiling", "Eyeglasses"}));
  const auto labels = reader.labels();
  const auto splits = reader.splits();
  const auto attributes = reader.attributes();
  int64_t positives = 0, smiling = 0, split_counts[3] = {};
  for (size_t i = 0; i < labels.size(); ++i) {
    positives += labels[i];
    ASSERT_EQ(attributes[2 * i + 1], labels[i] ? 1 : -1);  // the label is the Eyeglasses attribute
    smiling += attributes[2 * i] > 0;
    ++split_counts[splits[i]];
  }
  // Binomial(2000, p) within 4 standard deviations.
  auto near = [](int64_t k, double p) { return std::abs(k - 2000 * p) < 4 * std::sqrt(2000 * p * (1 - p)); };
  EXPECT_TRUE(near(positives, 0.5)) << positives;
  EXPECT_TRUE(near(smiling, 0.5)) << smiling;
  EXPECT_TRUE(near(split_counts[0], 0.7)) << split_counts[0];
  EXPECT_TRUE(near(split_counts[1], 0.2)) << split_counts[1];
  EXPECT_TRUE(near(split_counts[2], 0.1)) << split_counts[2];
  EXPECT_EQ(s.counts[1][0] + s.counts[1][1] + s.counts[1][2], positives);
}

TEST(Synth, BadFlagsNameTheFlag) {
  TempDir dir;
  auto error = [&](std::vector<std::string> args) -> std::string {
    Argv argv("facetrain synth", std::move(args));
    try {
      synth_command(argv.argc(), argv.argv());
    } catch (const UserError& e) {
      return e.what();
    }
    return "";
  };
  EXPECT_NE(error({"--output", dir / "x.h5", "--count", "0"}).find("--count"), std::string::npos);
  EXPECT_NE(error({"--output", dir / "x.h5", "--count", "10", "--task", "hats"}).find("--task"), std::string::npos);
  EXPECT_NE(error({"--output", dir / "x.h5", "--count", "10", "--size", "8"}).find("--size"), std::string::npos);
  EXPECT_NE(error({"--count", "10"}).find("--output"), std::string::npos);
  std::ofstream(dir / "exists.h5") << "x";
  const std::string e = error({"--output", dir / "exists.h5", "--count", "10"});
  EXPECT_NE(e.find("--overwrite"), std::string::npos) << e;
  EXPECT_NE(e.find(dir / "exists.h5"), std::string::npos) << e;
}

TEST(Stats, CountsWeightsAndMeanStdAgainstADirectComputation) {
  TempDir dir;
  SynthOptions o;
  o.output = dir / "s.h5";
  o.count = 500;
  o.size = 16;
  o.seed = 9;
  o.quiet = true;
  run_synth(o);
  const StoreStats stats = compute_store_stats(o.output);

  StoreReader reader(o.output);
  const auto labels = reader.labels();
  const auto splits = reader.splits();
  const auto pixels = all_pixels(reader);
  int64_t counts[2][3] = {};
  double sum[3] = {}, sum_sq[3] = {};
  int64_t n_train = 0;
  for (size_t i = 0; i < labels.size(); ++i) {
    ++counts[labels[i]][splits[i]];
    if (splits[i] != 0) continue;
    ++n_train;
    for (int p = 0; p < 16 * 16; ++p) {
      for (int c = 0; c < 3; ++c) {
        const double v = pixels[i * 768 + p * 3 + c] / 255.0;
        sum[c] += v;
        sum_sq[c] += v * v;
      }
    }
  }
  for (int k = 0; k < 2; ++k) {
    for (int s = 0; s < 3; ++s) EXPECT_EQ(stats.counts[k][s], counts[k][s]);
    EXPECT_EQ(stats.class_totals[k], counts[k][0] + counts[k][1] + counts[k][2]);
    // 'balanced': n_train / (n_classes * count_train)
    EXPECT_NEAR(stats.info.class_weights[k], static_cast<double>(n_train) / (2.0 * counts[k][0]), 1e-5);
  }
  const double n_values = static_cast<double>(n_train) * 256;
  for (int c = 0; c < 3; ++c) {
    const double mean = sum[c] / n_values;
    const double var = sum_sq[c] / n_values - mean * mean;
    EXPECT_NEAR(stats.info.mean[c], mean, 1e-5);
    EXPECT_NEAR(stats.info.std[c], std::sqrt(var), 1e-5);
    EXPECT_NEAR(stats.variance[c], var, 1e-5);
  }

  const std::string table = format_stats_table(stats);
  EXPECT_NE(table.find("smiling"), std::string::npos);
  EXPECT_NE(table.find("16x16x3"), std::string::npos);
  const auto json = nlohmann::json::parse(stats_json(stats));
  EXPECT_EQ(json["count"], 500);
  EXPECT_EQ(json["classes"][1]["train"]["count"], counts[1][0]);
  EXPECT_NEAR(json["classes"][1]["percent"].get<double>(), 100.0 * (counts[1][0] + counts[1][1] + counts[1][2]) / 500.0,
              1e-9);
  EXPECT_NEAR(json["train_mean"][2].get<double>(), sum[2] / n_values, 1e-5);

  Argv argv("facetrain stats", {o.output, "--json"});
  EXPECT_EQ(stats_command(argv.argc(), argv.argv()), 0);
}

TEST(Stats, MissingFileNamesIt) {
  Argv argv("facetrain stats", {"/nonexistent/store.h5"});
  try {
    stats_command(argv.argc(), argv.argv());
    FAIL() << "no error";
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/store.h5"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace facetrain
