// Ingest of the whole real Fashion-MNIST from Debian's dataset-fashion-mnist package (skipped when the
// package is absent): 60000 train + 10000 test, ten named classes, readable by h5dump.
#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

#include "datastore/store.h"
#include "tests/tools/fixtures.h"
#include "launcher/commands/commands.h"
#include "tools/stats.h"

namespace facetrain {
namespace {

constexpr const char* kFashionMnist = "/usr/share/datasets/fashion-mnist";

TEST(FashionMnist, WholeDebianPackageIngestsAndH5dumpReadsIt) {
  if (!std::filesystem::exists(std::string(kFashionMnist) + "/train-images-idx3-ubyte.gz")) {
    // install-deps.sh installs it, so CI (CI=true) must run this test rather than skip it.
    const char* ci = std::getenv("CI");
    if (ci != nullptr && std::string(ci) == "true")
      FAIL() << "dataset-fashion-mnist is not installed (CI=true: CI provides it)";
    GTEST_SKIP() << "dataset-fashion-mnist is not installed";
  }
  testing::TempDir dir;
  const std::string out = dir / "fashion-mnist.h5";
  testing::Argv argv("facetrain ingest", {"--source", "idx", "--input", kFashionMnist, "--output", out});
  ASSERT_EQ(ingest_command(argv.argc(), argv.argv()), 0);

  StoreReader reader(out);
  const StoreInfo& info = reader.info();
  EXPECT_EQ(info.count, 70000);
  // A seeded tenth of each class of the train file is the validation split; the t10k files are the test split.
  EXPECT_EQ(info.split_counts, (std::vector<int64_t>{54000, 6000, 10000}));
  ASSERT_EQ(info.class_names.size(), 10u);
  EXPECT_EQ(info.class_names[0], "T-shirt/top");
  EXPECT_EQ(info.class_names[9], "Ankle boot");
  EXPECT_EQ(info.height, 28);
  EXPECT_EQ(info.channels, 1);
  // Fashion-MNIST is balanced: 6000 per class in the train file (5400 train + 600 val here), 1000 in test.
  const StoreStats stats = compute_store_stats(out);
  for (int k = 0; k < 10; ++k) {
    EXPECT_EQ(stats.counts[k][0], 5400);
    EXPECT_EQ(stats.counts[k][1], 600);
    EXPECT_EQ(stats.counts[k][2], 1000);
    EXPECT_NEAR(info.class_weights[k], 1.0, 1e-6);
  }
  // The well-known train-file mean/std of Fashion-MNIST pixels/255 (0.2860, 0.3530), here of its 90 %.
  EXPECT_NEAR(info.mean[0], 0.2860, 5e-4);
  EXPECT_NEAR(info.std[0], 0.3530, 5e-4);

  std::string dump;
  ASSERT_EQ(testing::run_shell("h5dump -H " + out, &dump), 0) << dump;
  EXPECT_NE(dump.find("( 70000, 28, 28, 1 )"), std::string::npos) << dump;
}

}  // namespace
}  // namespace facetrain
