// Tests of the HDF5 store: round trip through StoreWriter/StoreReader (both read paths), the layout as
// h5dump sees it, partial-file cleanup, overwrite refusal, bad files, and train statistics against a
// direct two-pass computation.
#include <gtest/gtest.h>
#include <hdf5.h>

#include <array>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>

#include "core/error.h"
#include "datastore/store.h"
#include "tests/datastore/fixtures.h"

namespace facetrain {
namespace {

using testing::FixtureSpec;
using testing::TempDir;
using testing::write_fixture_store;
namespace fs = std::filesystem;

std::string run_capture(const std::string& cmd, int* status) {
  std::string out;
  FILE* pipe = popen(cmd.c_str(), "r");
  if (!pipe) {
    *status = -1;
    return out;
  }
  std::array<char, 4096> buf{};
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), pipe)) > 0) out.append(buf.data(), n);
  *status = pclose(pipe);
  return out;
}

TEST(Store, RoundTripBothReadPaths) {
  TempDir dir;
  const std::string path = dir.file("rt.h5");
  FixtureSpec spec;
  spec.count = 150;  // 64x64x3: 64 images per chunk, so 3 chunks, the last one partial
  spec.height = 64;
  spec.width = 64;
  spec.channels = 3;
  spec.attributes = 5;
  const auto ref = write_fixture_store(path, spec);
  ASSERT_TRUE(fs::exists(path));
  ASSERT_FALSE(fs::exists(path + ".partial"));

  StoreReader reader(path);
  const StoreInfo& info = reader.info();
  EXPECT_EQ(info.count, 150);
  EXPECT_EQ(info.height, 64);
  EXPECT_EQ(info.width, 64);
  EXPECT_EQ(info.channels, 3);
  EXPECT_EQ(reader.chunk_images(), 64);
  EXPECT_EQ(info.label_source, "test:fixture");
  EXPECT_EQ(info.class_names, (std::vector<std::string>{"class_0", "class_1", "class_2"}));
  EXPECT_EQ(info.attribute_names.size(), 5u);
  EXPECT_TRUE(info.has_identities);
  EXPECT_EQ(reader.labels(), ref.labels);
  EXPECT_EQ(reader.filenames(), ref.filenames);
  EXPECT_EQ(reader.identities(), ref.identities);
  const auto splits = reader.splits();
  ASSERT_EQ(splits.size(), 150u);
  for (size_t i = 0; i < splits.size(); ++i) EXPECT_EQ(splits[i], static_cast<uint8_t>(ref.splits[i]));
  const auto attrs = reader.attributes();
  ASSERT_EQ(attrs.size(), 150u * 5);
  for (size_t i = 0; i < 150; ++i)
    for (size_t a = 0; a < 5; ++a) EXPECT_EQ(attrs[i * 5 + a], ref.attributes[i][a]);
  std::vector<int64_t> val;
  for (int64_t i = 0; i < 150; ++i)
    if (ref.splits[i] == Split::kVal) val.push_back(i);
  EXPECT_EQ(reader.split_indices(Split::kVal), val);

  const int64_t bytes = reader.image_bytes();
  ASSERT_EQ(bytes, 64 * 64 * 3);
  ASSERT_TRUE(reader.direct_reads());  // uncompressed chunks: pread path available
  for (bool direct : {true, false}) {
    SCOPED_TRACE(direct ? "pread path" : "H5Dread path");
    reader.set_direct_reads(direct);
    ASSERT_EQ(reader.direct_reads(), direct);
    std::vector<uint8_t> all(150 * bytes);
    reader.read_range(0, 150, all.data());
    for (int64_t i = 0; i < 150; ++i)
      ASSERT_EQ(0, std::memcmp(all.data() + i * bytes, ref.images[i].data(), bytes)) << "image " << i;
    // A range crossing a chunk boundary.
    std::vector<uint8_t> part(10 * bytes);
    reader.read_range(60, 70, part.data());
    for (int64_t i = 0; i < 10; ++i)
      ASSERT_EQ(0, std::memcmp(part.data() + i * bytes, ref.images[60 + i].data(), bytes));
    // Any order, duplicates, neighbours (merged runs) and the last image.
    const std::vector<int64_t> idx = {149, 3, 64, 65, 66, 3, 0, 63, 128, 1, 2, 100};
    std::vector<uint8_t> got(idx.size() * bytes);
    reader.read_images(idx.data(), static_cast<int64_t>(idx.size()), got.data());
    for (size_t k = 0; k < idx.size(); ++k)
      ASSERT_EQ(0, std::memcmp(got.data() + k * bytes, ref.images[idx[k]].data(), bytes)) << "position " << k;
  }
}

TEST(Store, H5dumpReadsTheDocumentedLayout) {
  TempDir dir;
  const std::string path = dir.file("dump.h5");
  FixtureSpec spec;
  spec.count = 70;
  spec.height = 28;
  spec.width = 28;
  spec.channels = 1;
  write_fixture_store(path, spec);
  int status = 0;
  const std::string out = run_capture("h5dump -H '" + path + "' 2>&1", &status);
  ASSERT_EQ(status, 0) << out;
  EXPECT_NE(out.find("DATASET \"images\""), std::string::npos) << out;
  EXPECT_NE(out.find("H5T_STD_U8LE"), std::string::npos);
  EXPECT_NE(out.find("( 70, 28, 28, 1 ) / ( H5S_UNLIMITED, 28, 28, 1 )"), std::string::npos) << out;
  EXPECT_NE(out.find("DATASET \"labels\""), std::string::npos);
  EXPECT_NE(out.find("H5T_STD_I64LE"), std::string::npos);
  EXPECT_NE(out.find("DATASET \"split\""), std::string::npos);
  EXPECT_NE(out.find("DATASET \"filenames\""), std::string::npos);
  EXPECT_NE(out.find("DATASET \"class_names\""), std::string::npos);
  EXPECT_NE(out.find("ATTRIBUTE \"mean\""), std::string::npos);
  EXPECT_NE(out.find("ATTRIBUTE \"class_weights\""), std::string::npos);
  // The chunk shape (512 images of 28x28x1) as the properties block shows it.
  const std::string props = run_capture("h5dump -p -H -d /images '" + path + "' 2>&1", &status);
  ASSERT_EQ(status, 0) << props;
  EXPECT_NE(props.find("CHUNKED ( 512, 28, 28, 1 )"), std::string::npos) << props;
  // The format attribute's value, as a plain string.
  const std::string fmt = run_capture("h5dump -a /format '" + path + "' 2>&1", &status);
  ASSERT_EQ(status, 0) << fmt;
  EXPECT_NE(fmt.find("\"facetrain-store\""), std::string::npos) << fmt;
}

TEST(Store, WriterWithoutFinishLeavesNothing) {
  TempDir dir;
  const std::string path = dir.file("unfinished.h5");
  {
    StoreLayout layout;
    layout.height = layout.width = 8;
    layout.channels = 3;
    layout.class_names = {"a", "b"};
    StoreWriter writer(path, layout, false);
    std::vector<uint8_t> img(8 * 8 * 3, 7);
    for (int i = 0; i < 5; ++i) writer.append(img.data(), i % 2, Split::kTrain, "x");
    EXPECT_EQ(writer.count(), 5);
    EXPECT_TRUE(fs::exists(path + ".partial"));  // work in progress never has the final name
    EXPECT_FALSE(fs::exists(path));
  }
  EXPECT_FALSE(fs::exists(path + ".partial"));
  EXPECT_FALSE(fs::exists(path));
}

TEST(Store, RefusesToOverwriteUnlessAsked) {
  TempDir dir;
  const std::string path = dir.file("exists.h5");
  FixtureSpec spec;
  spec.count = 12;
  write_fixture_store(path, spec);
  spec.count = 20;
  try {
    write_fixture_store(path, spec, /*overwrite=*/false);
    FAIL() << "expected UserError";
  } catch (const UserError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find(path), std::string::npos) << what;
    EXPECT_NE(what.find("--overwrite"), std::string::npos) << what;
  }
  EXPECT_EQ(StoreReader(path).info().count, 12);  // untouched
  write_fixture_store(path, spec, /*overwrite=*/true);
  EXPECT_EQ(StoreReader(path).info().count, 20);
  EXPECT_FALSE(fs::exists(path + ".partial"));
}

TEST(Store, OpeningMissingOrForeignFilesIsAUserError) {
  TempDir dir;
  auto expect_user_error_naming = [](const std::string& path, const std::string& fragment) {
    try {
      StoreReader reader(path);
      FAIL() << "expected UserError for " << path;
    } catch (const UserError& e) {
      const std::string what = e.what();
      EXPECT_NE(what.find(path), std::string::npos) << what;
      EXPECT_NE(what.find(fragment), std::string::npos) << what;
    }
  };
  expect_user_error_naming(dir.file("missing.h5"), "does not exist");
  const std::string text = dir.file("text.h5");
  std::ofstream(text) << "not an hdf5 file\n";
  expect_user_error_naming(text, "not an HDF5 file");
  // A valid HDF5 file that is not a store.
  const std::string foreign = dir.file("foreign.h5");
  hid_t f = H5Fcreate(foreign.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  ASSERT_GE(f, 0);
  H5Fclose(f);
  expect_user_error_naming(foreign, "not a facetrain store");
  // A truncated store.
  const std::string good = dir.file("good.h5");
  FixtureSpec spec;
  spec.count = 10;
  write_fixture_store(good, spec);
  const std::string cut = dir.file("cut.h5");
  fs::copy_file(good, cut);
  fs::resize_file(cut, 1000);
  EXPECT_THROW(StoreReader{cut}, UserError);
}

TEST(Store, StatisticsMatchDirectComputation) {
  TempDir dir;
  const std::string path = dir.file("stats.h5");
  FixtureSpec spec;
  spec.count = 300;
  spec.height = 9;
  spec.width = 7;
  spec.classes = 4;
  const auto ref = write_fixture_store(path, spec);
  const StoreInfo info = StoreReader(path).info();

  // Two-pass mean and population std per channel over the train split, values in [0, 1].
  const int c = 3;
  std::vector<double> mean(c, 0), var(c, 0);
  double n = 0;
  for (size_t i = 0; i < ref.images.size(); ++i) {
    if (ref.splits[i] != Split::kTrain) continue;
    for (size_t p = 0; p < ref.images[i].size(); ++p) mean[p % c] += ref.images[i][p] / 255.0;
    n += ref.images[i].size() / c;
  }
  for (auto& m : mean) m /= n;
  for (size_t i = 0; i < ref.images.size(); ++i) {
    if (ref.splits[i] != Split::kTrain) continue;
    for (size_t p = 0; p < ref.images[i].size(); ++p) {
      const double d = ref.images[i][p] / 255.0 - mean[p % c];
      var[p % c] += d * d;
    }
  }
  ASSERT_EQ(info.mean.size(), 3u);
  ASSERT_EQ(info.std.size(), 3u);
  for (int ch = 0; ch < c; ++ch) {
    EXPECT_NEAR(info.mean[ch], mean[ch], 1e-6);
    EXPECT_NEAR(info.std[ch], std::sqrt(var[ch] / n), 1e-6);
  }
  // Counts per class (train only), balanced weights, split counts.
  std::vector<int64_t> counts(4, 0), splits(3, 0);
  for (size_t i = 0; i < ref.labels.size(); ++i) {
    splits[static_cast<int>(ref.splits[i])]++;
    if (ref.splits[i] == Split::kTrain) counts[ref.labels[i]]++;
  }
  EXPECT_EQ(info.class_counts, counts);
  EXPECT_EQ(info.split_counts, splits);
  EXPECT_EQ(splits[0], 210);  // 7 of every 10
  ASSERT_EQ(info.class_weights.size(), 4u);
  for (int k = 0; k < 4; ++k) {
    ASSERT_GT(counts[k], 0);
    EXPECT_NEAR(info.class_weights[k], 210.0 / (4.0 * counts[k]), 1e-5);
  }
}

TEST(Store, ParseSplitNamesTheFlag) {
  EXPECT_EQ(parse_split("val", "--split"), Split::kVal);
  try {
    parse_split("validation", "--split");
    FAIL();
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find("--split"), std::string::npos);
  }
}

}  // namespace
}  // namespace facetrain
