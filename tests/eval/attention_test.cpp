// Tests of eval/attention: uniform attention gives uniform maps (closed form for rollout), rollout against an
// independent loop implementation and hand-computed one-hot cases, the class-token row (not the last patch's),
// the heat-map orientation, and `eval attention` end to end in one process (outputs, bad input).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>

#include "core/error.h"
#include "datastore/fixtures.h"
#include "eval/attention.h"
#include "launcher/commands/commands.h"
#include "eval/visual_fixtures.h"
#include "models/vae.h"
#include "models/vit.h"
#include "lib/tiny_models.h"

namespace facetrain {
namespace {

using testing::LocalCommunicator;

VitOptions tiny_vit(int64_t depth) {
  VitOptions o = testing::tiny_vit_options(8, 2, 3, 2, 16, depth, 2);  // 4 x 4 patches, T = 17
  o.mlp_ratio = 2;
  return o;
}

// Random row-stochastic attention (B, heads, T, T).
torch::Tensor random_attention(int64_t b, int64_t heads, int64_t t, uint64_t seed) {
  torch::manual_seed(seed);
  return torch::softmax(torch::randn({b, heads, t, t}) * 2.0, -1);
}

TEST(Attention, ZeroQkvGivesUniformAttentionAndUniformMaps) {
  torch::manual_seed(3);
  const int64_t depth = 3;
  Vit vit(tiny_vit(depth));
  vit->eval();
  {
    torch::NoGradGuard no_grad;
    for (const auto& p : vit->named_parameters()) {
      if (p.key().find(".attn.qkv.") != std::string::npos) p.value().zero_();  // q = k = 0: all scores equal
    }
  }
  torch::NoGradGuard no_grad;
  const VitOutput out = vit->forward_with_attention(torch::randn({3, 3, 8, 8}));
  ASSERT_EQ(out.attention.size(), static_cast<size_t>(depth));
  const double t = 17.0;
  for (const auto& a : out.attention) EXPECT_TRUE(torch::allclose(a, torch::full_like(a, 1.0 / t), 0, 1e-7));

  const torch::Tensor cls = class_token_attention(out.attention);
  ASSERT_EQ(cls.sizes(), (std::vector<int64_t>{3, 16}));
  EXPECT_TRUE(torch::allclose(cls, torch::full_like(cls, 1.0 / t), 0, 1e-7));

  // (U/2 + I/2)^L with U = 11^T / T idempotent is 0.5^L I + (1 - 0.5^L) U: off-diagonal (1 - 0.5^L) / T.
  const torch::Tensor rollout = attention_rollout(out.attention);
  const double expected = (1.0 - std::pow(0.5, depth)) / t;
  EXPECT_TRUE(torch::allclose(rollout, torch::full_like(rollout, expected), 0, 1e-7)) << rollout;

  // Uniform maps stay uniform after normalisation (every value equal: 0).
  for (const auto& maps : {normalize_maps(cls), normalize_maps(rollout)}) {
    EXPECT_EQ(maps.min().item<float>(), maps.max().item<float>());
    EXPECT_EQ(maps.max().item<float>(), 0.0f);
  }
}

TEST(Attention, ClassTokenRowIsUsedNotTheLastPatchRow) {
  // T = 5 (2 x 2 patches). Class token (row 0) looks at patch 0; the last patch (row 4) looks at patch 3.
  torch::Tensor a = torch::zeros({1, 2, 5, 5});
  for (int h = 0; h < 2; ++h) {
    a[0][h][0][1] = 0.7;  // class token -> patch 0
    a[0][h][0][0] = 0.3;
    a[0][h][4][4] = 0.9;  // last patch -> patch 3 (itself)
    a[0][h][4][0] = 0.1;
    for (int r = 1; r < 4; ++r) a[0][h][r][r] = 1.0;
  }
  const torch::Tensor cls = class_token_attention({a});
  EXPECT_TRUE(torch::allclose(cls, torch::tensor({{0.7f, 0.0f, 0.0f, 0.0f}})));
  EXPECT_EQ(cls.argmax(1).item<int64_t>(), 0);  // the seed's row -1 would put the maximum at patch 3

  // Heads are averaged: different heads, different rows.
  torch::Tensor b = random_attention(2, 3, 5, 11);
  const torch::Tensor got = class_token_attention({random_attention(2, 3, 5, 12), b});  // last block counts
  for (int64_t i = 0; i < 2; ++i) {
    for (int64_t p = 0; p < 4; ++p) {
      const double want =
          (b[i][0][0][p + 1].item<double>() + b[i][1][0][p + 1].item<double>() + b[i][2][0][p + 1].item<double>()) /
          3.0;
      EXPECT_NEAR(got[i][p].item<double>(), want, 1e-6);
    }
    const torch::Tensor last_row = b[i].select(1, 4).narrow(1, 1, 4).mean(0);
    EXPECT_FALSE(torch::allclose(got[i], last_row, 0, 1e-3));  // a case where the two rows differ
  }
}

TEST(Attention, RolloutOfIdentityAttentionAndOneHotClassToken) {
  const int64_t t = 5;
  const torch::Tensor eye = torch::eye(t).expand({1, 2, t, t}).contiguous();
  // Every token attends to itself only: the class token never reaches a patch.
  const torch::Tensor r0 = attention_rollout({eye, eye, eye});
  EXPECT_TRUE(torch::equal(r0, torch::zeros({1, t - 1})));
  EXPECT_TRUE(torch::equal(normalize_maps(r0), torch::zeros({1, t - 1})));

  // Block 2 of 3: the class token looks only at patch 2 (token 3). (A + I)/2 gives its row 0.5 e0 + 0.5 e3; the
  // identity blocks around it leave that row as it is: rollout = 0.5 on patch 2, 0 elsewhere.
  torch::Tensor hot = eye.clone();
  hot[0].select(1, 0).zero_();
  hot[0][0][0][3] = 1.0;
  hot[0][1][0][3] = 1.0;
  const torch::Tensor r1 = attention_rollout({eye, hot, eye});
  EXPECT_TRUE(torch::allclose(r1, torch::tensor({{0.0f, 0.0f, 0.5f, 0.0f}})));
  EXPECT_TRUE(torch::allclose(normalize_maps(r1), torch::tensor({{0.0f, 0.0f, 1.0f, 0.0f}})));
}

TEST(Attention, RolloutMatchesIndependentLoops) {
  const int64_t b = 2, heads = 3, t = 6, depth = 3;
  std::vector<torch::Tensor> blocks;
  for (int64_t l = 0; l < depth; ++l) blocks.push_back(random_attention(b, heads, t, 100 + l));
  const torch::Tensor got = attention_rollout(blocks);
  for (int64_t i = 0; i < b; ++i) {
    // R = I; per block: M = (mean_h A + I) / rowsum; R = M R.
    std::vector<std::vector<double>> r(t, std::vector<double>(t, 0.0));
    for (int64_t k = 0; k < t; ++k) r[k][k] = 1.0;
    for (int64_t l = 0; l < depth; ++l) {
      std::vector<std::vector<double>> m(t, std::vector<double>(t, 0.0));
      for (int64_t x = 0; x < t; ++x) {
        double sum = 0;
        for (int64_t y = 0; y < t; ++y) {
          double v = 0;
          for (int64_t h = 0; h < heads; ++h) v += blocks[l][i][h][x][y].item<double>();
          m[x][y] = v / heads + (x == y ? 1.0 : 0.0);
          sum += m[x][y];
        }
        for (int64_t y = 0; y < t; ++y) m[x][y] /= sum;
      }
      std::vector<std::vector<double>> next(t, std::vector<double>(t, 0.0));
      for (int64_t x = 0; x < t; ++x)
        for (int64_t y = 0; y < t; ++y)
          for (int64_t z = 0; z < t; ++z) next[x][y] += m[x][z] * r[z][y];
      r = next;
    }
    for (int64_t p = 0; p < t - 1; ++p) EXPECT_NEAR(got[i][p].item<double>(), r[0][p + 1], 1e-6);
  }
}

TEST(Attention, NormalizeMapsIsPerImageMinMax) {
  const torch::Tensor maps = torch::tensor({{0.1f, 0.3f, 0.2f}, {5.0f, 5.0f, 5.0f}, {0.0f, 0.0f, 2.0f}});
  const torch::Tensor got = normalize_maps(maps);
  EXPECT_TRUE(torch::allclose(got, torch::tensor({{0.0f, 1.0f, 0.5f}, {0.0f, 0.0f, 0.0f}, {0.0f, 0.0f, 1.0f}})));
}

TEST(Attention, HeatMapFollowsRowMajorPatchesAndAlpha) {
  // 8 x 8 gray image, 2 x 2 grid; patch 1 = row 0, column 1 (top right) is hot.
  std::vector<uint8_t> image(64, 100);
  const float map[4] = {0.0f, 1.0f, 0.0f, 0.0f};
  const std::vector<uint8_t> plain = overlay_heat_map(image.data(), 8, 8, 1, map, 2, 1, 0.0);
  for (uint8_t v : plain) ASSERT_EQ(v, 100);  // alpha 0: the image itself, as RGB
  const std::vector<uint8_t> heat = overlay_heat_map(image.data(), 8, 8, 1, map, 2, 2, 1.0);
  ASSERT_EQ(heat.size(), 16u * 16u * 3u);
  auto pixel = [&](int y, int x, int ch) { return static_cast<int>(heat[(y * 16 + x) * 3 + ch]); };
  EXPECT_GT(pixel(2, 13, 0), pixel(2, 13, 2));    // top right: red (JET high)
  EXPECT_GT(pixel(13, 2, 2), pixel(13, 2, 0));    // bottom left: blue (JET low)
  EXPECT_GT(pixel(13, 13, 2), pixel(13, 13, 0));  // bottom right: blue
  const std::vector<uint8_t> big = upscale_rgb(image.data(), 8, 8, 1, 3);
  EXPECT_EQ(big.size(), 24u * 24u * 3u);
}

// --- the command, in one process (a world of one) ---------------------------------------------------------

class AttentionCommand : public testing::VisualCommandTest {
 protected:
  AttentionCommand() : VisualCommandTest(eval_attention_command, "attention", 5) {}
};

TEST_F(AttentionCommand, WritesOverlaysGridAndJson) {
  const std::string out = dir_.file("out");
  ASSERT_EQ(run({"--checkpoint", vit_checkpoint_, "--store", store_path_, "--indices", "4,0,29", "--output", out,
                 "--scale", "2"}),
            0);
  std::ifstream in(out + "/attention.json");
  const nlohmann::json doc = nlohmann::json::parse(in);
  ASSERT_EQ(doc["images"].size(), 3u);
  EXPECT_EQ(doc["grid"], 4);
  // Maps in the JSON equal the functions applied to the model's attention on the same normalised images.
  const std::vector<int64_t> order = {4, 0, 29};
  StoreReader store(store_path_);
  std::vector<uint8_t> pixels(3 * store.image_bytes());
  store.read_images(order.data(), 3, pixels.data());
  torch::Tensor x =
      torch::from_blob(pixels.data(), {3, 8, 8, 3}, torch::kUInt8).permute({0, 3, 1, 2}).to(torch::kFloat32) / 255.0;
  for (int ch = 0; ch < 3; ++ch) x.select(1, ch).sub_(info_.mean[ch]).div_(info_.std[ch]);
  torch::NoGradGuard no_grad;
  vit_->eval();
  const VitOutput ref = vit_->forward_with_attention(x);
  const torch::Tensor cls = class_token_attention(ref.attention), roll = attention_rollout(ref.attention);
  for (int i = 0; i < 3; ++i) {
    const auto& e = doc["images"][i];
    EXPECT_EQ(e["index"], order[i]);
    EXPECT_EQ(e["file"], "img_" + std::to_string(order[i]) + ".png");
    EXPECT_EQ(e["prediction"], ref.logits[i].argmax().item<int64_t>());
    for (int p = 0; p < 16; ++p) {
      EXPECT_NEAR(e["cls_map"][p].get<double>(), cls[i][p].item<double>(), 1e-5);
      EXPECT_NEAR(e["rollout_map"][p].get<double>(), roll[i][p].item<double>(), 1e-5);
    }
    for (const char* m : {"cls", "rollout"}) {
      const cv::Mat png = cv::imread(out + "/" + e["files"][m].get<std::string>(), cv::IMREAD_UNCHANGED);
      ASSERT_FALSE(png.empty());
      EXPECT_EQ(png.cols, 16);
      EXPECT_EQ(png.rows, 16);
    }
  }
  // Grid: the 3 images side by side, each as image | cls | rollout: one row of 9 tiles of 16 px, 2 px gaps.
  const cv::Mat grid = cv::imread(out + "/attention_grid.png", cv::IMREAD_UNCHANGED);
  EXPECT_EQ(grid.cols, 9 * 16 + 10 * 2);
  EXPECT_EQ(grid.rows, 1 * 16 + 2 * 2);
  EXPECT_EQ(doc["grid_images_per_row"], 3);
  EXPECT_FALSE(std::filesystem::exists(out + "/attention_grid.png.partial"));
}

TEST_F(AttentionCommand, CountTakesTheFirstImagesOfTheSplitAndMethodSelectsColumns) {
  const std::string out = dir_.file("out2");
  ASSERT_EQ(run({"--checkpoint", vit_checkpoint_, "--store", store_path_, "--split", "val", "--count", "2", "--method",
                 "cls", "--output", out, "--scale", "1"}),
            0);
  std::ifstream in(out + "/attention.json");
  const nlohmann::json doc = nlohmann::json::parse(in);
  StoreReader store(store_path_);
  const auto val = store.split_indices(Split::kVal);
  ASSERT_EQ(doc["images"].size(), 2u);
  EXPECT_EQ(doc["images"][0]["index"], val[0]);
  EXPECT_EQ(doc["images"][1]["index"], val[1]);
  EXPECT_FALSE(doc["images"][0].contains("rollout_map"));
  const cv::Mat grid = cv::imread(out + "/attention_grid.png", cv::IMREAD_UNCHANGED);
  EXPECT_EQ(grid.cols, 4 * 8 + 5 * 2);  // 2 images x (image | cls)
}

TEST_F(AttentionCommand, GridWrapsAfterFourImages) {
  const std::string out = dir_.file("out3");
  ASSERT_EQ(run({"--checkpoint", vit_checkpoint_, "--store", store_path_, "--split", "train", "--count", "6",
                 "--method", "rollout", "--output", out, "--scale", "1"}),
            0);
  const cv::Mat grid = cv::imread(out + "/attention_grid.png", cv::IMREAD_UNCHANGED);
  EXPECT_EQ(grid.cols, 8 * 8 + 9 * 2);  // 4 images x (image | rollout)
  EXPECT_EQ(grid.rows, 2 * 8 + 3 * 2);  // 6 images: 2 grid rows
}

TEST_F(AttentionCommand, BadInputIsAUserError) {
  const std::string out = dir_.file("bad");
  EXPECT_THROW(run({"--checkpoint", vae_checkpoint_, "--store", store_path_, "--output", out}), UserError);
  EXPECT_THROW(run({"--checkpoint", vit_checkpoint_, "--store", store_path_, "--indices", "1,30", "--output", out}),
               UserError);
  EXPECT_THROW(run({"--checkpoint", vit_checkpoint_, "--store", store_path_, "--indices", "1,x", "--output", out}),
               UserError);
  EXPECT_THROW(run({"--checkpoint", vit_checkpoint_, "--store", store_path_, "--count", "0", "--output", out}),
               UserError);
  EXPECT_THROW(run({"--checkpoint", vit_checkpoint_, "--store", store_path_, "--method", "max", "--output", out}),
               UserError);
  EXPECT_THROW(run({"--checkpoint", vit_checkpoint_, "--store", store_path_}), UserError);  // no --output
  // A store whose images do not fit the model.
  testing::FixtureSpec spec;
  spec.count = 10;
  spec.height = spec.width = 16;
  spec.classes = 2;
  testing::write_fixture_store(dir_.file("big.h5"), spec);
  EXPECT_THROW(run({"--checkpoint", vit_checkpoint_, "--store", dir_.file("big.h5"), "--output", out}), UserError);
  EXPECT_FALSE(std::filesystem::exists(out + "/attention.json"));
}

}  // namespace
}  // namespace facetrain
