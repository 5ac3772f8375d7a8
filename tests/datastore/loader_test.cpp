// Tests of ShardLoader and eval_shard, with rank loaders built side by side in one process: disjoint
// shards covering the epoch for 1..4 ranks, equal batch counts, batches independent of thread count,
// ranks' union equal to the single-process batch, mid-epoch resume, normalization values, chunk-aware
// shuffling, errors from the background threads, and clean shutdown mid-epoch.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "core/error.h"
#include "datastore/augment.h"
#include "datastore/loader.h"
#include "tests/datastore/fixtures.h"

namespace facetrain {
namespace {

using testing::FixtureSpec;
using testing::FixtureStore;
using testing::TempDir;
using testing::write_fixture_store;

struct Epoch {
  std::vector<Batch> batches;
};

Epoch run_epoch(ShardLoader& loader, int64_t epoch, int64_t first_batch = 0) {
  Epoch out;
  loader.start_epoch(epoch, first_batch);
  Batch b;
  while (loader.next(&b)) out.batches.push_back(b);
  return out;
}

std::vector<int64_t> as_vector(const torch::Tensor& t) {
  auto c = t.contiguous();
  return std::vector<int64_t>(c.data_ptr<int64_t>(), c.data_ptr<int64_t>() + c.numel());
}

AugmentOptions full_augment() {
  AugmentOptions a;
  a.rotation_range = 20;
  a.width_shift_range = 0.2f;
  a.height_shift_range = 0.2f;
  a.shear_range = 10;
  a.zoom_range = 0.2f;
  a.horizontal_flip = true;
  a.random_grayscale = 0.2f;
  a.fill_mode = FillMode::kReflect;
  return a;
}

class LoaderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    spec_.count = 155;  // train: 7 of every 10 -> 15 * 7 + 5 = 110 images
    spec_.height = 12;
    spec_.width = 10;
    spec_.channels = 3;
    path_ = dir_.file("loader.h5");
    ref_ = write_fixture_store(path_, spec_);
    for (int64_t i = 0; i < spec_.count; ++i)
      if (ref_.splits[i] == Split::kTrain) train_.push_back(i);
  }
  LoaderOptions options(int rank, int world, int64_t batch) const {
    LoaderOptions o;
    o.rank = rank;
    o.world_size = world;
    o.batch_size = batch;
    o.seed = 42;
    return o;
  }
  TempDir dir_;
  FixtureSpec spec_;
  std::string path_;
  FixtureStore ref_;
  std::vector<int64_t> train_;
};

TEST_F(LoaderTest, ShardsAreDisjointEqualAndCoverTheEpoch) {
  ASSERT_EQ(train_.size(), 110u);
  const int64_t batch = 6;
  for (int world = 1; world <= 4; ++world) {
    const int64_t expected_batches = 110 / (world * batch);
    std::vector<std::unique_ptr<ShardLoader>> ranks;
    for (int r = 0; r < world; ++r) ranks.push_back(std::make_unique<ShardLoader>(path_, options(r, world, batch)));
    for (int64_t epoch : {0, 1}) {
      std::multiset<int64_t> seen;
      for (int r = 0; r < world; ++r) {
        ASSERT_EQ(ranks[r]->batches_per_epoch(), expected_batches) << "world " << world;
        const Epoch e = run_epoch(*ranks[r], epoch);
        ASSERT_EQ(static_cast<int64_t>(e.batches.size()), expected_batches) << "world " << world << " rank " << r;
        for (const Batch& b : e.batches) {
          ASSERT_EQ(b.images.sizes(), (std::vector<int64_t>{batch, 3, 12, 10}));
          ASSERT_EQ(b.epoch, epoch);
          for (int64_t i : as_vector(b.indices)) seen.insert(i);
        }
      }
      // Disjoint: no index twice. Coverage: all but the remainder of 110 / (W*B), all from the train split.
      std::set<int64_t> unique(seen.begin(), seen.end());
      EXPECT_EQ(unique.size(), seen.size()) << "world " << world << " epoch " << epoch;
      EXPECT_EQ(static_cast<int64_t>(seen.size()), expected_batches * world * batch);
      EXPECT_EQ(ranks[0]->images_per_epoch(), expected_batches * world * batch);
      for (int64_t i : unique) EXPECT_TRUE(std::binary_search(train_.begin(), train_.end(), i)) << i;
    }
  }
}

TEST_F(LoaderTest, EveryImageOnceWhenTheGlobalBatchDividesTheSet) {
  // 120 images (a subset, in scrambled order) with B = 5: W*B = 5, 10, 15, 20 all divide 120.
  std::vector<int64_t> subset;
  for (int64_t i = 0; i < 120; ++i) subset.push_back((i * 37) % 120);
  for (int world = 1; world <= 4; ++world) {
    std::vector<int64_t> all;
    for (int r = 0; r < world; ++r) {
      LoaderOptions o = options(r, world, 5);
      o.subset = subset;
      ShardLoader loader(path_, o);
      EXPECT_EQ(loader.batches_per_epoch(), 120 / (5 * world));
      for (const Batch& b : run_epoch(loader, 3).batches) {
        const auto v = as_vector(b.indices);
        all.insert(all.end(), v.begin(), v.end());
      }
    }
    std::sort(all.begin(), all.end());
    ASSERT_EQ(all.size(), 120u) << "world " << world;
    for (int64_t i = 0; i < 120; ++i) ASSERT_EQ(all[i], i) << "world " << world;
  }
}

TEST_F(LoaderTest, BatchesDoNotDependOnThreadCount) {
  LoaderOptions o = options(1, 2, 7);
  o.augment = full_augment();
  o.threads = 1;
  o.prefetch_batches = 1;
  ShardLoader one(path_, o);
  o.threads = 3;
  o.prefetch_batches = 5;
  ShardLoader three(path_, o);
  const Epoch a = run_epoch(one, 2), b = run_epoch(three, 2);
  ASSERT_EQ(a.batches.size(), b.batches.size());
  ASSERT_GT(a.batches.size(), 0u);
  for (size_t k = 0; k < a.batches.size(); ++k) {
    EXPECT_EQ(a.batches[k].batch_in_epoch, static_cast<int64_t>(k));
    EXPECT_TRUE(torch::equal(a.batches[k].indices, b.batches[k].indices)) << k;
    EXPECT_TRUE(torch::equal(a.batches[k].labels, b.batches[k].labels)) << k;
    EXPECT_TRUE(torch::equal(a.batches[k].images, b.batches[k].images)) << k;
  }
}

TEST_F(LoaderTest, UnionOfRanksEqualsSingleProcessBatch) {
  // The property the trainer's gold test relies on: W ranks with batch B see, batch by batch, exactly what
  // one process with batch W*B sees (same images, same augmentation), rank r holding rows [r*B, (r+1)*B).
  const int world = 3;
  const int64_t batch = 4;
  LoaderOptions single = options(0, 1, world * batch);
  single.augment = full_augment();
  ShardLoader whole(path_, single);
  const Epoch reference = run_epoch(whole, 1);
  for (int r = 0; r < world; ++r) {
    LoaderOptions o = options(r, world, batch);
    o.augment = full_augment();
    o.threads = 2;
    ShardLoader rank(path_, o);
    ASSERT_EQ(rank.batches_per_epoch(), whole.batches_per_epoch());
    const Epoch e = run_epoch(rank, 1);
    ASSERT_EQ(e.batches.size(), reference.batches.size());
    for (size_t k = 0; k < e.batches.size(); ++k) {
      const auto rows = torch::indexing::Slice(r * batch, (r + 1) * batch);
      EXPECT_TRUE(torch::equal(e.batches[k].indices, reference.batches[k].indices.index({rows})))
          << "rank " << r << " batch " << k;
      EXPECT_TRUE(torch::equal(e.batches[k].labels, reference.batches[k].labels.index({rows})));
      EXPECT_TRUE(torch::equal(e.batches[k].images, reference.batches[k].images.index({rows})));
      EXPECT_EQ(as_vector(e.batches[k].indices), rank.batch_indices(1, static_cast<int64_t>(k)));
    }
  }
}

TEST_F(LoaderTest, ResumeMidEpochGivesTheRemainingBatches) {
  LoaderOptions o = options(0, 2, 5);
  o.augment = full_augment();
  ShardLoader full(path_, o);
  const Epoch all = run_epoch(full, 4);
  ASSERT_EQ(all.batches.size(), 11u);
  ShardLoader resumed(path_, o);
  // Consume a little of another epoch first, then jump (restart mid-delivery must be clean too).
  resumed.start_epoch(0);
  Batch b;
  ASSERT_TRUE(resumed.next(&b));
  const Epoch rest = run_epoch(resumed, 4, 7);
  ASSERT_EQ(rest.batches.size(), 4u);
  for (size_t k = 0; k < rest.batches.size(); ++k) {
    EXPECT_EQ(rest.batches[k].batch_in_epoch, static_cast<int64_t>(7 + k));
    EXPECT_TRUE(torch::equal(rest.batches[k].indices, all.batches[7 + k].indices));
    EXPECT_TRUE(torch::equal(rest.batches[k].images, all.batches[7 + k].images));
  }
  // Starting at the end delivers nothing.
  EXPECT_EQ(run_epoch(resumed, 4, 11).batches.size(), 0u);
}

// A resume on another number of ranks: 3 ranks consume 4 steps (60 images) of epoch 5, 2 ranks go on for 2
// steps (20), then 4 ranks finish the epoch (2 steps of 20). The (index, image) pairs consumed across the
// chain are exactly those of one uninterrupted epoch on 1 rank (same order, same augmentation draws): none
// skipped, none twice.
TEST_F(LoaderTest, ResumeOnAnotherWorldSizeConsumesTheEpochOnce) {
  constexpr int64_t kBatch = 5, kEpoch = 5;
  std::vector<int64_t> subset;
  for (int64_t i = 0; i < 120; ++i) subset.push_back((i * 37) % 120);  // 120: W*B = 15, 10, 20 divide it
  auto with = [&](int rank, int world) {
    LoaderOptions o = options(rank, world, kBatch);
    o.subset = subset;
    o.augment = full_augment();
    return o;
  };
  std::map<int64_t, torch::Tensor> chained;  // store index -> the image it was delivered as
  int64_t images_done = 0;
  int64_t twice = 0;
  for (const auto& [world, steps] : std::vector<std::pair<int, int64_t>>{{3, 4}, {2, 2}, {4, -1}}) {
    for (int r = 0; r < world; ++r) {
      ShardLoader loader(path_, with(r, world));
      loader.start_epoch_at_image(kEpoch, images_done);
      Batch b;
      for (int64_t s = 0; (steps < 0 || s < steps) && loader.next(&b); ++s) {
        const auto idx = as_vector(b.indices);
        for (size_t k = 0; k < idx.size(); ++k) twice += chained.emplace(idx[k], b.images[k].clone()).second ? 0 : 1;
      }
    }
    images_done += steps < 0 ? 0 : steps * world * kBatch;
  }
  EXPECT_EQ(twice, 0) << "images delivered twice across the world-size changes";
  ShardLoader single(path_, with(0, 1));
  int64_t seen = 0;
  for (const Batch& b : run_epoch(single, kEpoch).batches) {
    const auto idx = as_vector(b.indices);
    for (size_t k = 0; k < idx.size(); ++k, ++seen) {
      auto it = chained.find(idx[k]);
      ASSERT_NE(it, chained.end()) << "image " << idx[k] << " skipped across the world-size changes";
      EXPECT_TRUE(torch::equal(it->second, b.images[k])) << "image " << idx[k] << " augmented differently";
    }
  }
  EXPECT_EQ(seen, 120);
  EXPECT_EQ(static_cast<int64_t>(chained.size()), seen);
}

TEST_F(LoaderTest, EpochsAreDifferentPermutations) {
  ShardLoader loader(path_, options(0, 1, 110));
  const auto e0 = as_vector(run_epoch(loader, 0).batches.at(0).indices);
  const auto e1 = as_vector(run_epoch(loader, 1).batches.at(0).indices);
  EXPECT_NE(e0, e1);
  auto s0 = e0, s1 = e1;
  std::sort(s0.begin(), s0.end());
  std::sort(s1.begin(), s1.end());
  EXPECT_EQ(s0, train_);
  EXPECT_EQ(s1, train_);
  EXPECT_EQ(as_vector(run_epoch(loader, 0).batches.at(0).indices), e0);  // reproducible
  LoaderOptions ordered = options(0, 1, 110);
  ordered.shuffle = false;
  ShardLoader in_order(path_, ordered);
  EXPECT_EQ(as_vector(run_epoch(in_order, 5).batches.at(0).indices), train_);
}

TEST_F(LoaderTest, NormalizationMatchesDirectComputation) {
  StoreReader reader(path_);
  const StoreInfo& info = reader.info();
  for (Normalization mode : {Normalization::kMeanStd, Normalization::kMinusOneOne, Normalization::kUnit}) {
    LoaderOptions o = options(0, 1, 9);
    o.normalization = mode;
    ShardLoader loader(path_, o);
    const Epoch e = run_epoch(loader, 0);
    for (const Batch& b : e.batches) {
      const auto idx = as_vector(b.indices);
      const auto labels = as_vector(b.labels);
      auto img = b.images.accessor<float, 4>();
      for (size_t k = 0; k < idx.size(); ++k) {
        ASSERT_EQ(labels[k], ref_.labels[idx[k]]);
        const auto& px = ref_.images[idx[k]];
        for (int c = 0; c < 3; ++c)
          for (int y = 0; y < 12; ++y)
            for (int x = 0; x < 10; ++x) {
              const double v = px[(y * 10 + x) * 3 + c];
              const double expected = mode == Normalization::kMeanStd ? (v / 255.0 - info.mean[c]) / info.std[c]
                                      : mode == Normalization::kUnit  ? v / 255.0
                                                                      : v / 127.5 - 1.0;
              ASSERT_NEAR(img[k][c][y][x], expected, 1e-5) << "image " << idx[k] << " channel " << c;
            }
      }
    }
  }
}

TEST_F(LoaderTest, AugmentationIsKeyedByStoreIndexAndEpoch) {
  LoaderOptions o = options(0, 1, 10);
  o.augment = full_augment();
  o.normalization = Normalization::kUnit;
  ShardLoader loader(path_, o);
  const Epoch e = run_epoch(loader, 3);
  const Batch& b = e.batches.at(2);
  const auto idx = as_vector(b.indices);
  const float scale[3] = {static_cast<float>(1.0 / 255.0), static_cast<float>(1.0 / 255.0),
                          static_cast<float>(1.0 / 255.0)};
  const float shift[3] = {0, 0, 0};
  int augmented = 0;
  for (size_t k = 0; k < idx.size(); ++k) {
    const AugmentParams p = draw_augment_params(o.augment, 12, 10, o.seed, 3, idx[k]);
    std::vector<float> expected(12 * 10 * 3);
    augment_normalize(ref_.images[idx[k]].data(), 12, 10, 3, p, o.augment.fill_mode, o.augment.cval, scale, shift,
                      expected.data());
    auto got = b.images[static_cast<int64_t>(k)].contiguous();
    ASSERT_EQ(0, std::memcmp(got.data_ptr<float>(), expected.data(), expected.size() * sizeof(float)))
        << "image " << idx[k];
    // And it is not the plain image.
    bool differs = false;
    for (size_t i = 0; i < expected.size() && !differs; ++i)
      differs = std::abs(expected[i] - ref_.images[idx[k]][(i % 120) * 3 + i / 120] / 255.0f) > 1e-3f;
    augmented += differs;
  }
  EXPECT_GE(augmented, 8);
}

// uint8_images (data.normalize_on device): the same images in the same order, as bytes; input_affine()
// applied to them gives the float batches (exactly the pixels without augmentation, within half a byte
// step with it, where the float path keeps bilinear values fractional).
TEST_F(LoaderTest, Uint8BatchesTimesTheAffineAreTheFloatBatches) {
  for (bool augmented : {false, true}) {
    LoaderOptions o = options(0, 1, 10);
    if (augmented) o.augment = full_augment();
    ShardLoader floats(path_, o);
    o.uint8_images = true;
    ShardLoader bytes(path_, o);
    std::vector<float> scale, shift;
    bytes.input_affine(&scale, &shift);
    ASSERT_EQ(scale.size(), 3u);
    const Epoch f = run_epoch(floats, 2), b = run_epoch(bytes, 2);
    ASSERT_EQ(f.batches.size(), b.batches.size());
    for (size_t i = 0; i < f.batches.size(); ++i) {
      ASSERT_EQ(b.batches[i].images.scalar_type(), torch::kUInt8);
      ASSERT_EQ(as_vector(f.batches[i].indices), as_vector(b.batches[i].indices));
      ASSERT_EQ(as_vector(f.batches[i].labels), as_vector(b.batches[i].labels));
      const torch::Tensor s = torch::tensor(scale).view({1, 3, 1, 1}), t = torch::tensor(shift).view({1, 3, 1, 1});
      const torch::Tensor normalized = b.batches[i].images.to(torch::kFloat32) * s + t;
      const double tolerance = augmented ? 0.5 * *std::max_element(scale.begin(), scale.end()) + 1e-5 : 1e-5;
      EXPECT_LE((normalized - f.batches[i].images).abs().max().item<double>(), tolerance) << "batch " << i;
      if (!augmented) {  // and the bytes are the store's pixels, channel-planar
        const auto idx = as_vector(b.batches[i].indices);
        auto px = b.batches[i].images.accessor<uint8_t, 4>();
        for (size_t k = 0; k < idx.size(); ++k)
          for (int c = 0; c < 3; ++c)
            for (int y = 0; y < 12; ++y)
              for (int x = 0; x < 10; ++x) ASSERT_EQ(px[k][c][y][x], ref_.images[idx[k]][(y * 10 + x) * 3 + c]);
      }
    }
  }
}

TEST_F(LoaderTest, ChunkShuffleIsAPermutationThatStaysInFewChunks) {
  TempDir dir;
  const std::string path = dir.file("chunks.h5");
  FixtureSpec spec;
  spec.count = 640;  // 64x64x3: 64 images per chunk, 10 chunks
  spec.height = spec.width = 64;
  spec.split_pattern = false;
  write_fixture_store(path, spec);
  LoaderOptions o;
  o.batch_size = 16;
  o.world_size = 2;
  o.chunk_shuffle = true;
  o.seed = 9;
  for (int64_t epoch : {0, 1}) {
    std::vector<int64_t> all;
    std::vector<std::vector<int64_t>> per_batch;
    for (int r = 0; r < 2; ++r) {
      o.rank = r;
      ShardLoader loader(path, o);
      ASSERT_EQ(loader.batches_per_epoch(), 20);
      const Epoch e = run_epoch(loader, epoch);
      per_batch.resize(e.batches.size());
      for (size_t k = 0; k < e.batches.size(); ++k) {
        const auto v = as_vector(e.batches[k].indices);
        all.insert(all.end(), v.begin(), v.end());
        per_batch[k].insert(per_batch[k].end(), v.begin(), v.end());
      }
    }
    std::sort(all.begin(), all.end());
    ASSERT_EQ(all.size(), 640u);
    for (int64_t i = 0; i < 640; ++i) ASSERT_EQ(all[i], i);
    // A global batch of 32 lies in one window of kChunkShuffleWindow whole chunks.
    for (const auto& b : per_batch) {
      std::set<int64_t> chunks;
      for (int64_t i : b) chunks.insert(i / 64);
      EXPECT_LE(chunks.size(), static_cast<size_t>(ShardLoader::kChunkShuffleWindow));
    }
  }
}

TEST_F(LoaderTest, WithoutDropLastTheLastBatchIsShort) {
  LoaderOptions o = options(0, 1, 25);
  o.drop_last = false;
  o.shuffle = false;
  ShardLoader loader(path_, o);
  EXPECT_EQ(loader.batches_per_epoch(), 5);
  const Epoch e = run_epoch(loader, 0);
  ASSERT_EQ(e.batches.size(), 5u);
  EXPECT_EQ(e.batches.back().images.size(0), 10);
  std::vector<int64_t> all;
  for (const auto& b : e.batches) {
    const auto v = as_vector(b.indices);
    all.insert(all.end(), v.begin(), v.end());
  }
  EXPECT_EQ(all, train_);
}

TEST_F(LoaderTest, SubsetReplacesTheSplit) {
  LoaderOptions o = options(0, 1, 4);
  o.subset = {3, 150, 7, 7, 0, 99, 42, 18};
  o.shuffle = false;
  ShardLoader loader(path_, o);
  const Epoch e = run_epoch(loader, 0);
  ASSERT_EQ(e.batches.size(), 2u);
  EXPECT_EQ(as_vector(e.batches[0].indices), (std::vector<int64_t>{3, 150, 7, 7}));
  EXPECT_EQ(as_vector(e.batches[1].indices), (std::vector<int64_t>{0, 99, 42, 18}));
  o.subset = {1, 155};  // one past the last image
  EXPECT_THROW(ShardLoader(path_, o), UserError);
}

TEST_F(LoaderTest, MisuseIsAUserError) {
  EXPECT_THROW(ShardLoader(dir_.file("missing.h5"), options(0, 1, 4)), UserError);
  EXPECT_THROW(ShardLoader(path_, options(0, 4, 28)), UserError);  // 4*28 > 110
  LoaderOptions o = options(0, 2, 4);
  o.drop_last = false;
  EXPECT_THROW(ShardLoader(path_, o), UserError);
  o = options(0, 1, 4);
  o.augment.zoom_range = 2;
  EXPECT_THROW(ShardLoader(path_, o), UserError);
  // A store without a test split.
  TempDir dir;
  FixtureSpec spec;
  spec.count = 20;
  spec.split_pattern = false;
  write_fixture_store(dir.file("train_only.h5"), spec);
  o = options(0, 1, 4);
  o.split = Split::kTest;
  EXPECT_THROW(ShardLoader(dir.file("train_only.h5"), o), UserError);
}

TEST_F(LoaderTest, BackgroundErrorsAreRethrownInNext) {
  LoaderOptions o = options(0, 1, 5);
  o.prefetch_batches = 1;
  ShardLoader loader(path_, o);
  // Truncate the store under the open loader: the I/O thread's read fails, next() reports it.
  std::filesystem::resize_file(path_, 4096);
  loader.start_epoch(0);
  Batch b;
  EXPECT_THROW(
      {
        while (loader.next(&b)) {
        }
      },
      std::runtime_error);
}

TEST_F(LoaderTest, DestroyingMidEpochDoesNotHang) {
  for (int threads : {1, 3}) {
    LoaderOptions o = options(0, 1, 2);
    o.threads = threads;
    o.prefetch_batches = 2;
    o.augment = full_augment();
    ShardLoader loader(path_, o);
    Batch b;
    ASSERT_TRUE(loader.next(&b));  // next() before start_epoch starts epoch 0
    EXPECT_EQ(b.epoch, 0);
    EXPECT_GE(loader.wait_seconds(), 0.0);
  }  // destructor joins with batches in flight (the test's timeout catches a hang)
}

TEST(EvalShard, CoversEveryIndexOnceForUnevenSizes) {
  for (int64_t n : {0, 1, 2, 7, 10, 13, 101}) {
    std::vector<int64_t> indices(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) indices[i] = 1000 + 3 * i;
    for (int world = 1; world <= 4; ++world) {
      std::vector<int64_t> joined;
      size_t lo = SIZE_MAX, hi = 0;
      for (int r = 0; r < world; ++r) {
        const auto part = eval_shard(indices, r, world);
        lo = std::min(lo, part.size());
        hi = std::max(hi, part.size());
        joined.insert(joined.end(), part.begin(), part.end());
      }
      EXPECT_EQ(joined, indices) << "n " << n << " world " << world;
      EXPECT_LE(hi - lo, 1u);
    }
  }
}

}  // namespace
}  // namespace facetrain
