// Ingest tests on generated fixtures: a CelebA-layout folder with real file formats and corrupt JPEGs,
// image-folder trees (class layout with seeded fractions, train/val/test layout), gzip'd IDX round trips,
// determinism across thread counts, interruption, and every bad-input case as a UserError naming the
// path or flag.
#include <gtest/gtest.h>

#include <atomic>
#include <map>

#include <opencv2/imgcodecs.hpp>

#include "core/error.h"
#include "datastore/store.h"
#include "tests/tools/fixtures.h"
#include "launcher/commands/commands.h"
#include "tools/ingest.h"
#include "tools/sources.h"

namespace facetrain {
namespace {

using testing::Argv;
using testing::TempDir;
namespace fs = std::filesystem;

// Runs ingest_command and returns the UserError message ("" when it succeeded).
std::string ingest_error(std::vector<std::string> args) {
  Argv argv("facetrain ingest", std::move(args));
  try {
    EXPECT_EQ(ingest_command(argv.argc(), argv.argv()), 0);
  } catch (const UserError& e) {
    return e.what();
  }
  return "";
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

// 14 CelebA images: 12 valid with distinct colours and attributes, 000005.jpg random bytes, 000009.jpg a
// truncated JPEG; partitions 0/1/2 by index; identities 100 + index % 4.
std::vector<testing::CelebaImage> celeba_images() {
  std::vector<testing::CelebaImage> images;
  for (int i = 1; i <= 14; ++i) {
    testing::CelebaImage im;
    char name[16];
    std::snprintf(name, sizeof(name), "%06d.jpg", i);
    im.name = name;
    im.bgr = cv::Scalar(10 * i, 255 - 12 * i, (37 * i) % 256);
    for (int a = 0; a < 40; ++a) im.attributes.push_back(((i * 7 + a * 3) % 5) < 2 ? 1 : -1);
    im.partition = i <= 8 ? 0 : (i <= 11 ? 1 : 2);
    im.identity = 100 + i % 4;
    im.valid = i != 5 && i != 9;
    images.push_back(im);
  }
  return images;
}

TEST(IngestCeleba, LabelsAttributesIdentitiesSplitsAndSkippedFiles) {
  TempDir dir;
  const auto images = celeba_images();
  testing::write_celeba_folder(dir.path() / "celeba", images, {"random", "truncated"});
  const std::string out = dir / "celeba.h5";
  IngestOptions o;
  o.source = "celeba";
  o.input = dir / "celeba";
  o.output = out;
  o.height = o.width = 32;
  o.label_attribute = "Eyeglasses";
  o.quiet = true;
  const IngestSummary summary = run_ingest(o);
  EXPECT_EQ(summary.listed, 14);
  EXPECT_EQ(summary.written, 12);
  ASSERT_EQ(summary.skipped, 2);
  ASSERT_EQ(summary.skipped_examples.size(), 2u);
  EXPECT_EQ(summary.skipped_examples[0].name, "000005.jpg");
  EXPECT_EQ(summary.skipped_examples[0].reason, "unreadable");
  EXPECT_EQ(summary.skipped_examples[1].name, "000009.jpg");
  EXPECT_EQ(summary.skipped_examples[1].reason, "truncated");
  EXPECT_TRUE(contains(format_ingest_summary(summary), "000009.jpg: truncated"));
  EXPECT_FALSE(fs::exists(out + ".partial"));

  StoreReader reader(out);
  const StoreInfo& info = reader.info();
  EXPECT_EQ(info.count, 12);
  EXPECT_EQ(info.height, 32);
  EXPECT_EQ(info.channels, 3);
  EXPECT_EQ(info.class_names, (std::vector<std::string>{"not_Eyeglasses", "Eyeglasses"}));
  EXPECT_EQ(info.label_source, "celeba:Eyeglasses");
  EXPECT_EQ(info.attribute_names, testing::celeba_attribute_names());
  EXPECT_TRUE(info.has_identities);
  const int eyeglasses = 15;
  ASSERT_EQ(info.attribute_names[eyeglasses], "Eyeglasses");

  const auto labels = reader.labels();
  const auto splits = reader.splits();
  const auto names = reader.filenames();
  const auto ids = reader.identities();
  const auto attributes = reader.attributes();
  ASSERT_EQ(attributes.size(), 12u * 40u);
  std::vector<uint8_t> pixels(static_cast<size_t>(12 * reader.image_bytes()));
  reader.read_range(0, 12, pixels.data());
  size_t k = 0;
  for (const auto& im : images) {
    if (!im.valid) continue;
    SCOPED_TRACE(im.name);
    EXPECT_EQ(names[k], im.name);
    EXPECT_EQ(labels[k], im.attributes[eyeglasses] > 0 ? 1 : 0);
    EXPECT_EQ(splits[k], im.partition);
    EXPECT_EQ(ids[k], im.identity);
    for (int a = 0; a < 40; ++a) EXPECT_EQ(attributes[k * 40 + a], im.attributes[a]);
    // Solid colour in, the same colour out (JPEG at quality 98), in RGB order.
    const uint8_t* p = pixels.data() + k * reader.image_bytes();
    for (int c = 0; c < 3; ++c) EXPECT_NEAR(p[(16 * 32 + 16) * 3 + c], im.bgr[2 - c], 3.0) << "channel " << c;
    ++k;
  }
  EXPECT_EQ(k, 12u);

  std::string dump;
  ASSERT_EQ(testing::run_shell("h5dump -H " + out, &dump), 0) << dump;
  EXPECT_TRUE(contains(dump, "( 12, 32, 32, 3 )")) << dump;
}

TEST(IngestCeleba, UnknownAttributeListsValidNames) {
  TempDir dir;
  testing::write_celeba_folder(dir.path() / "celeba", celeba_images(), {"random", "truncated"});
  const std::string e = ingest_error(
      {"--source", "celeba", "--input", dir / "celeba", "--output", dir / "x.h5", "--label-attribute", "Smilin"});
  EXPECT_TRUE(contains(e, "--label-attribute 'Smilin'")) << e;
  EXPECT_TRUE(contains(e, "Smiling")) << e;
  EXPECT_TRUE(contains(e, "list_attr_celeba.txt")) << e;
  EXPECT_FALSE(fs::exists(dir / "x.h5"));
  // A CelebA folder with its own partition rejects split fractions.
  const std::string f = ingest_error(
      {"--source", "celeba", "--input", dir / "celeba", "--output", dir / "x.h5", "--val-fraction", "0.2"});
  EXPECT_TRUE(contains(f, "--val-fraction")) << f;
  EXPECT_TRUE(contains(f, "list_eval_partition.txt")) << f;
}

TEST(IngestCeleba, MalformedAttributeFileNamesFileAndLine) {
  TempDir dir;
  testing::write_celeba_folder(dir.path() / "celeba", celeba_images(), {"random", "truncated"});
  std::ofstream(dir.path() / "celeba" / "list_attr_celeba.txt", std::ios::app) << "000099.jpg 1 -1\n";
  const std::string e = ingest_error({"--source", "celeba", "--input", dir / "celeba", "--output", dir / "x.h5"});
  EXPECT_TRUE(contains(e, "list_attr_celeba.txt:17")) << e;
}

// DIR/training_fake/*.png (6) and DIR/training_real/*.png (10): 40x32 random pictures.
std::map<std::string, cv::Mat> write_class_folders(const fs::path& root) {
  std::map<std::string, cv::Mat> written;  // relative name -> BGR pixels
  cv::RNG rng(7);
  for (const auto& [cls, n] : std::vector<std::pair<std::string, int>>{{"training_real", 10}, {"training_fake", 6}}) {
    fs::create_directories(root / cls);
    for (int i = 0; i < n; ++i) {
      cv::Mat m(32, 40, CV_8UC3);
      rng.fill(m, cv::RNG::UNIFORM, 0, 256);
      const std::string rel = cls + "/img_" + std::to_string(i) + ".png";
      cv::imwrite((root / rel).string(), m);
      written[rel] = m;
    }
  }
  std::ofstream(root / "training_real" / "notes.txt") << "not an image, ignored\n";
  return written;
}

TEST(IngestFolders, ClassesSortedStratifiedFractionsAndExactPixels) {
  TempDir dir;
  const auto written = write_class_folders(dir.path() / "faces");
  const std::string out = dir / "faces.h5";
  ASSERT_EQ(ingest_error({"--source", "folders", "--input", dir / "faces", "--output", out, "--size", "16",
                          "--val-fraction", "0.2", "--test-fraction", "0.2", "--seed", "3", "--quiet"}),
            "");
  StoreReader reader(out);
  EXPECT_EQ(reader.info().class_names, (std::vector<std::string>{"training_fake", "training_real"}));
  EXPECT_EQ(reader.info().label_source, "folder");
  const auto labels = reader.labels();
  const auto splits = reader.splits();
  const auto names = reader.filenames();
  ASSERT_EQ(labels.size(), 16u);
  // Stratified: per class round(0.2 n) test, round(0.2 n) val.
  int counts[2][3] = {};
  for (size_t i = 0; i < labels.size(); ++i) ++counts[labels[i]][splits[i]];
  EXPECT_EQ(counts[0][2], 1);  // fake: 6 -> round(1.2) = 1 test, 1 val, 4 train
  EXPECT_EQ(counts[0][1], 1);
  EXPECT_EQ(counts[0][0], 4);
  EXPECT_EQ(counts[1][2], 2);  // real: 10 -> 2 test, 2 val, 6 train
  EXPECT_EQ(counts[1][1], 2);
  EXPECT_EQ(counts[1][0], 6);
  // Order: class, then path; pixels = centre 32x32 crop of 40x32, 2x2 block means, RGB.
  EXPECT_EQ(names.front(), "training_fake/img_0.png");
  std::vector<uint8_t> pixels(static_cast<size_t>(16 * reader.image_bytes()));
  reader.read_range(0, 16, pixels.data());
  for (size_t i = 0; i < names.size(); ++i) {
    EXPECT_EQ(labels[i], names[i].rfind("training_fake", 0) == 0 ? 0 : 1);
    const cv::Mat& src = written.at(names[i]);
    int worst = 0;
    for (int y = 0; y < 16; ++y) {
      for (int x = 0; x < 16; ++x) {
        for (int c = 0; c < 3; ++c) {
          int sum = 0;
          for (int d = 0; d < 4; ++d) sum += src.at<cv::Vec3b>(2 * y + d / 2, 4 + 2 * x + d % 2)[2 - c];
          const double got = pixels[i * reader.image_bytes() + (y * 16 + x) * 3 + c];
          worst = std::max(worst, static_cast<int>(std::lround(std::abs(got - sum / 4.0))));
        }
      }
    }
    EXPECT_LE(worst, 1) << names[i];
  }
  // The same seed gives the same splits; another seed, another assignment.
  ASSERT_EQ(
      ingest_error({"--source", "folders", "--input", dir / "faces", "--output", dir / "b.h5", "--size", "16",
                    "--val-fraction", "0.2", "--test-fraction", "0.2", "--seed", "3", "--quiet", "--threads", "1"}),
      "");
  StoreReader again(dir / "b.h5");
  EXPECT_EQ(again.splits(), splits);
  std::vector<uint8_t> pixels_one_thread(pixels.size());
  again.read_range(0, 16, pixels_one_thread.data());
  EXPECT_EQ(pixels_one_thread, pixels);
}

TEST(IngestFolders, TrainValTestLayoutIsThePartition) {
  TempDir dir;
  const fs::path root = dir.path() / "split";
  cv::Mat m(8, 8, CV_8UC3, cv::Scalar(1, 2, 3));
  const std::vector<std::tuple<std::string, std::string, int>> files = {
      {"train", "cat", 3}, {"train", "dog", 2}, {"val", "cat", 1}, {"test", "dog", 2}};
  for (const auto& [split, cls, n] : files) {
    fs::create_directories(root / split / cls);
    for (int i = 0; i < n; ++i) cv::imwrite((root / split / cls / (std::to_string(i) + ".png")).string(), m);
  }
  IngestOptions o;
  o.source = "folders";
  o.input = root.string();
  o.output = dir / "split.h5";
  o.height = o.width = 8;
  o.quiet = true;
  const IngestSummary s = run_ingest(o);
  EXPECT_EQ(s.class_names, (std::vector<std::string>{"cat", "dog"}));
  EXPECT_EQ(s.counts, (std::vector<std::vector<int64_t>>{{3, 1, 0}, {2, 0, 2}}));
  StoreReader reader(o.output);
  EXPECT_EQ(reader.filenames()[3], "val/cat/0.png");
  EXPECT_EQ(reader.splits()[3], static_cast<uint8_t>(Split::kVal));
  // The folders are the partition: fractions are refused, named as the caller names them.
  o.test_fraction = 0.1;
  o.overwrite = true;
  o.names.test_fraction = "the test fraction";
  try {
    run_ingest(o);
    FAIL() << "no error";
  } catch (const UserError& e) {
    EXPECT_TRUE(contains(e.what(), "the test fraction: ")) << e.what();
  }
}

// An IDX source in ROOT: 50 train and 20 t10k random 28x28 images, train labels i % 10, test labels 3i % 10.
struct IdxSource {
  std::vector<uint8_t> train, test, train_labels, test_labels;
};

IdxSource write_idx_source(const fs::path& root) {
  fs::create_directories(root);
  IdxSource s{std::vector<uint8_t>(50 * 28 * 28), std::vector<uint8_t>(20 * 28 * 28), std::vector<uint8_t>(50),
              std::vector<uint8_t>(20)};
  cv::RNG rng(11);
  rng.fill(s.train, cv::RNG::UNIFORM, 0, 256);
  rng.fill(s.test, cv::RNG::UNIFORM, 0, 256);
  for (int i = 0; i < 50; ++i) s.train_labels[i] = static_cast<uint8_t>(i % 10);
  for (int i = 0; i < 20; ++i) s.test_labels[i] = static_cast<uint8_t>((i * 3) % 10);
  testing::write_idx_gz((root / "train-images-idx3-ubyte.gz").string(), {50, 28, 28}, s.train);
  testing::write_idx_gz((root / "train-labels-idx1-ubyte.gz").string(), {50}, s.train_labels);
  testing::write_idx_gz((root / "t10k-images-idx3-ubyte.gz").string(), {20, 28, 28}, s.test);
  testing::write_idx_gz((root / "t10k-labels-idx1-ubyte.gz").string(), {20}, s.test_labels);
  return s;
}

TEST(IngestIdx, RoundTripPixelsLabelsAndSplits) {
  TempDir dir;
  const fs::path root = dir.path() / "digits";
  const auto [train, test, train_labels, test_labels] = write_idx_source(root);

  // Native size, grayscale: exact pixels.
  ASSERT_EQ(ingest_error({"--source", "idx", "--input", root.string(), "--output", dir / "a.h5", "--val-fraction", "0",
                          "--quiet"}),
            "");
  {
    StoreReader reader(dir / "a.h5");
    EXPECT_EQ(reader.info().class_names[3], "3");  // the folder name has no "fashion": digits
    EXPECT_EQ(reader.info().height, 28);
    EXPECT_EQ(reader.info().channels, 1);
    std::vector<uint8_t> pixels(70 * 28 * 28);
    reader.read_range(0, 70, pixels.data());
    EXPECT_TRUE(std::equal(train.begin(), train.end(), pixels.begin()));
    EXPECT_TRUE(std::equal(test.begin(), test.end(), pixels.begin() + train.size()));
    const auto labels = reader.labels();
    const auto splits = reader.splits();
    for (int i = 0; i < 70; ++i) {
      EXPECT_EQ(labels[i], i < 50 ? train_labels[i] : test_labels[i - 50]);
      EXPECT_EQ(splits[i], i < 50 ? 0 : 2);
    }
    EXPECT_EQ(reader.filenames()[50], "t10k/000000");
  }
  // Resized to 14, replicated to RGB, fashion names, 20% of train carved into val.
  ASSERT_EQ(ingest_error({"--source", "idx", "--input", root.string(), "--output", dir / "b.h5", "--size", "14",
                          "--channels", "3", "--idx-classes", "fashion", "--val-fraction", "0.2", "--quiet"}),
            "");
  StoreReader reader(dir / "b.h5");
  EXPECT_EQ(reader.info().class_names[0], "T-shirt/top");
  EXPECT_EQ(reader.info().class_names[9], "Ankle boot");
  EXPECT_EQ(reader.info().split_counts, (std::vector<int64_t>{40, 10, 20}));
  std::vector<uint8_t> pixels(70 * 14 * 14 * 3);
  reader.read_range(0, 70, pixels.data());
  int worst = 0;
  for (int i = 0; i < 70; ++i) {
    const uint8_t* src = i < 50 ? &train[i * 784] : &test[(i - 50) * 784];
    for (int y = 0; y < 14; ++y) {
      for (int x = 0; x < 14; ++x) {
        const double mean = (src[2 * y * 28 + 2 * x] + src[2 * y * 28 + 2 * x + 1] + src[(2 * y + 1) * 28 + 2 * x] +
                             src[(2 * y + 1) * 28 + 2 * x + 1]) /
                            4.0;
        for (int c = 0; c < 3; ++c) {
          worst =
              std::max(worst, static_cast<int>(std::lround(std::abs(pixels[((i * 14 + y) * 14 + x) * 3 + c] - mean))));
        }
      }
    }
  }
  EXPECT_LE(worst, 1);
  const auto splits = reader.splits();
  for (int i = 50; i < 70; ++i) EXPECT_EQ(splits[i], 2);
}

TEST(IngestIdx, DefaultValidationSplitClassSelectionAndTrainLimit) {
  TempDir dir;
  const fs::path root = dir.path() / "digits";
  const IdxSource source = write_idx_source(root);
  const auto& train_labels = source.train_labels;
  const auto& test_labels = source.test_labels;
  // Default: a seeded tenth of each class of the train file is the validation split; t10k is test.
  ASSERT_EQ(ingest_error({"--source", "idx", "--input", root.string(), "--output", dir / "a.h5", "--quiet"}), "");
  EXPECT_EQ(StoreReader(dir / "a.h5").info().split_counts, (std::vector<int64_t>{40, 10, 20}));
  // Classes 3 and 1, in that order (relabelled 0 and 1); 4 of their 8 train images; val and test whole.
  ASSERT_EQ(ingest_error({"--source", "idx", "--input", root.string(), "--output", dir / "b.h5", "--classes", "3,1",
                          "--train-limit", "4", "--quiet"}),
            "");
  StoreReader reader(dir / "b.h5");
  EXPECT_EQ(reader.info().class_names, (std::vector<std::string>{"3", "1"}));
  EXPECT_EQ(reader.info().split_counts, (std::vector<int64_t>{4, 2, 4}));
  const auto labels = reader.labels();
  const auto names = reader.filenames();
  for (size_t i = 0; i < labels.size(); ++i) {
    const int k = std::stoi(names[i].substr(names[i].find('/') + 1));
    const int original = names[i].rfind("train", 0) == 0 ? train_labels[k] : test_labels[k];
    EXPECT_EQ(labels[i], original == 3 ? 0 : 1) << names[i];
  }
  const std::string e = ingest_error(
      {"--source", "idx", "--input", root.string(), "--output", dir / "c.h5", "--classes", "3,Nope", "--quiet"});
  EXPECT_TRUE(contains(e, "--classes: 'Nope' is neither a class name nor an index")) << e;
  EXPECT_FALSE(fs::exists(dir / "c.h5"));
}

TEST(IngestIdx, TruncatedAndMissingFilesNameThePath) {
  TempDir dir;
  const fs::path root = dir.path() / "idx";
  fs::create_directories(root);
  const std::string e = ingest_error({"--source", "idx", "--input", root.string(), "--output", dir / "x.h5"});
  EXPECT_TRUE(contains(e, "train-images-idx3-ubyte")) << e;
  testing::write_idx_gz((root / "train-images-idx3-ubyte.gz").string(), {50, 28, 28}, std::vector<uint8_t>(1000));
  testing::write_idx_gz((root / "train-labels-idx1-ubyte.gz").string(), {50}, std::vector<uint8_t>(50));
  testing::write_idx_gz((root / "t10k-images-idx3-ubyte.gz").string(), {1, 28, 28}, std::vector<uint8_t>(784));
  testing::write_idx_gz((root / "t10k-labels-idx1-ubyte.gz").string(), {1}, std::vector<uint8_t>(1));
  const std::string t = ingest_error({"--source", "idx", "--input", root.string(), "--output", dir / "x.h5"});
  EXPECT_TRUE(contains(t, "train-images-idx3-ubyte.gz: truncated")) << t;
  EXPECT_FALSE(fs::exists(dir / "x.h5"));
}

TEST(IngestErrors, EveryBadInputIsAOneLineUserErrorNamingThePathOrFlag) {
  TempDir dir;
  write_class_folders(dir.path() / "faces");
  const std::string faces = dir / "faces";
  struct Case {
    std::vector<std::string> args;
    std::string must_name;
  };
  fs::create_directories(dir.path() / "with_empty" / "a");
  fs::create_directories(dir.path() / "with_empty" / "b");
  cv::imwrite(dir / "with_empty/a/x.png", cv::Mat(4, 4, CV_8UC3, cv::Scalar::all(5)));
  fs::create_directories(dir.path() / "no_classes");
  std::ofstream(dir / "existing.h5") << "x";
  const std::vector<Case> cases = {
      {{"--source", "folders", "--input", dir / "missing", "--output", dir / "o.h5"}, dir / "missing"},
      {{"--source", "celeba", "--input", dir / "missing", "--output", dir / "o.h5"}, dir / "missing"},
      {{"--source", "idx", "--input", dir / "missing", "--output", dir / "o.h5"}, dir / "missing"},
      {{"--source", "celeba", "--input", faces, "--output", dir / "o.h5"}, "img_align_celeba"},
      {{"--source", "folders", "--input", dir / "with_empty", "--output", dir / "o.h5"}, dir / "with_empty/b"},
      {{"--source", "folders", "--input", dir / "no_classes", "--output", dir / "o.h5"}, dir / "no_classes"},
      {{"--source", "folders", "--input", faces, "--output", dir / "existing.h5"}, "--overwrite"},
      {{"--source", "folders", "--input", faces, "--output", dir / "existing.h5"}, dir / "existing.h5"},
      {{"--source", "zip", "--input", faces, "--output", dir / "o.h5"}, "--source"},
      {{"--input", faces, "--output", dir / "o.h5"}, "--source"},
      {{"--source", "folders", "--output", dir / "o.h5"}, "--input"},
      {{"--source", "folders", "--input", faces}, "--output"},
      {{"--source", "folders", "--input", faces, "--output", dir / "o.h5", "--channels", "2"}, "--channels"},
      {{"--source", "folders", "--input", faces, "--output", dir / "o.h5", "--size", "big"}, "--size"},
      {{"--source", "folders", "--input", faces, "--output", dir / "o.h5", "--size", "0"}, "--size"},
      {{"--source", "folders", "--input", faces, "--output", dir / "o.h5", "--val-fraction", "0.6", "--test-fraction",
        "0.5"},
       "--val-fraction"},
      {{"--source", "folders", "--input", faces, "--output", dir / "o.h5", "--bogus"}, "bogus"},
      {{"--source", "folders", "--input", faces, "--output", dir / "o.h5", "--face-crop", "--face-cascade",
        dir / "none.xml"},
       dir / "none.xml"},
      {{"--source", "idx", "--input", faces, "--output", dir / "o.h5", "--face-crop"}, "--face-crop"},
  };
  for (const auto& c : cases) {
    std::string joined;
    for (const auto& a : c.args) joined += a + " ";
    SCOPED_TRACE(joined);
    const std::string e = ingest_error(c.args);
    EXPECT_TRUE(contains(e, c.must_name)) << "error: '" << e << "'";
    EXPECT_FALSE(contains(e, "\n")) << e;
    EXPECT_FALSE(fs::exists(dir / "o.h5"));
    EXPECT_FALSE(fs::exists(dir / "o.h5.partial"));
  }
  EXPECT_EQ(testing::read_bytes(dir / "existing.h5").size(), 1u);  // untouched
}

TEST(IngestErrors, AllImagesUnreadableIsAUserError) {
  TempDir dir;
  fs::create_directories(dir.path() / "bad" / "a");
  testing::write_bytes(dir / "bad/a/x.jpg", std::vector<uint8_t>(100, 1));
  const std::string e =
      ingest_error({"--source", "folders", "--input", dir / "bad", "--output", dir / "o.h5", "--quiet"});
  EXPECT_TRUE(contains(e, "could be read")) << e;
  EXPECT_FALSE(fs::exists(dir / "o.h5"));
  EXPECT_FALSE(fs::exists(dir / "o.h5.partial"));
}

TEST(IngestInterrupt, StopFlagLeavesNoOutputAtAll) {
  TempDir dir;
  write_class_folders(dir.path() / "faces");
  std::atomic<bool> stop{true};
  IngestOptions o;
  o.source = "folders";
  o.input = dir / "faces";
  o.output = dir / "o.h5";
  o.quiet = true;
  o.stop = &stop;
  try {
    run_ingest(o);
    FAIL() << "no error";
  } catch (const UserError& e) {
    EXPECT_TRUE(contains(e.what(), "interrupted")) << e.what();
  }
  EXPECT_FALSE(fs::exists(dir / "o.h5"));
  EXPECT_FALSE(fs::exists(dir / "o.h5.partial"));
}

TEST(IngestLimit, EvenlySpacedSubsampleCoversClasses) {
  SourceListing listing;
  for (int i = 0; i < 10; ++i) {
    SourceSample s;
    s.name = std::to_string(i);
    s.label = i < 5 ? 0 : 1;
    listing.samples.push_back(s);
  }
  apply_limit(&listing, 4);
  ASSERT_EQ(listing.samples.size(), 4u);
  EXPECT_EQ(listing.samples[0].name, "0");  // floor(k * 10 / 4) = 0, 2, 5, 7
  EXPECT_EQ(listing.samples[1].name, "2");
  EXPECT_EQ(listing.samples[2].name, "5");
  EXPECT_EQ(listing.samples[3].name, "7");
}

TEST(IngestFaceCrop, FacelessImagesFallBackAndAreCounted) {
  TempDir dir;
  write_class_folders(dir.path() / "faces");
  IngestOptions o;
  o.source = "folders";
  o.input = dir / "faces";
  o.output = dir / "o.h5";
  o.face_crop = true;
  o.height = o.width = 16;
  o.quiet = true;
  const IngestSummary s = run_ingest(o);
  EXPECT_EQ(s.written, 16);
  EXPECT_EQ(s.faces_not_found, 16);  // random noise holds no face
  EXPECT_TRUE(contains(format_ingest_summary(s), "no face found in 16 images"));
}

}  // namespace
}  // namespace facetrain
