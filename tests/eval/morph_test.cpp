// Tests of eval/morph and eval/gif_writer: slerp/lerp endpoints and closed-form midpoints, the loop's frames
// decoding the endpoint latents, GIFs read back with giflib (frame count, size, delay, NETSCAPE2.0 loop, pixels),
// and `eval morph` end to end in one process (files, sizes, bad input).
#include <gif_lib.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/videoio.hpp>

#include "core/error.h"
#include "datastore/fixtures.h"
#include "launcher/commands/commands.h"
#include "eval/image_selection.h"
#include "eval/gif_writer.h"
#include "eval/morph.h"
#include "eval/visual_fixtures.h"
#include "lib/tiny_models.h"

namespace facetrain {
namespace {

using testing::LocalCommunicator;

// --- interpolation ---------------------------------------------------------------------------------------

TEST(Morph, SlerpEndpointsAreExactAndMidpointIsOnTheCircle) {
  const torch::Tensor a = torch::tensor({2.0f, 0.0f}), b = torch::tensor({0.0f, 2.0f});
  const torch::Tensor path = interpolate_latents(a, b, {0.0, 0.5, 1.0 / 3.0, 1.0}, Interpolation::kSlerp);
  EXPECT_TRUE(torch::equal(path[0], a));
  EXPECT_TRUE(torch::equal(path[3], b));
  EXPECT_NEAR(path[1][0].item<double>(), std::sqrt(2.0), 1e-6);  // 2 (cos 45deg, sin 45deg)
  EXPECT_NEAR(path[1][1].item<double>(), std::sqrt(2.0), 1e-6);
  EXPECT_NEAR(path[2][0].item<double>(), 2.0 * std::cos(M_PI / 6), 1e-6);  // a third of 90 degrees
  EXPECT_NEAR(path[2][1].item<double>(), 2.0 * std::sin(M_PI / 6), 1e-6);

  // Random latents: exact endpoints, constant norm for equal norms, angle from a proportional to t.
  torch::manual_seed(1);
  const torch::Tensor u = torch::randn({16}), v0 = torch::randn({16});
  const torch::Tensor v = v0 * (u.norm() / v0.norm());
  const torch::Tensor p = interpolate_latents(u, v, {0.0, 0.25, 1.0}, Interpolation::kSlerp);
  EXPECT_TRUE(torch::equal(p[0], u));
  EXPECT_TRUE(torch::equal(p[2], v));
  EXPECT_NEAR(p[1].norm().item<double>(), u.norm().item<double>(), 1e-4);
  const double omega = std::acos((u * v).sum().item<double>() / (u.norm() * v.norm()).item<double>());
  const double angle =
      std::acos(std::clamp((u * p[1]).sum().item<double>() / (u.norm() * p[1].norm()).item<double>(), -1.0, 1.0));
  EXPECT_NEAR(angle, 0.25 * omega, 1e-4);
}

TEST(Morph, LerpAndDegenerateSlerp) {
  const torch::Tensor a = torch::tensor({1.0f, -2.0f, 4.0f}), b = torch::tensor({3.0f, 2.0f, 0.0f});
  const torch::Tensor l = interpolate_latents(a, b, {0.5, 0.25}, Interpolation::kLerp);
  EXPECT_TRUE(torch::allclose(l[0], torch::tensor({2.0f, 0.0f, 2.0f})));
  EXPECT_TRUE(torch::allclose(l[1], torch::tensor({1.5f, -1.0f, 3.0f})));
  // Parallel vectors: no great circle; slerp falls back to lerp.
  const torch::Tensor s =
      interpolate_latents(torch::tensor({1.0f, 0.0f}), torch::tensor({3.0f, 0.0f}), {0.5}, Interpolation::kSlerp);
  EXPECT_TRUE(torch::allclose(s[0], torch::tensor({2.0f, 0.0f})));
  EXPECT_EQ(parse_interpolation("lerp"), Interpolation::kLerp);
  EXPECT_THROW(parse_interpolation("cubic"), UserError);
}

TEST(Morph, LoopPairsStartAtEachLatentAndWrapAround) {
  torch::manual_seed(2);
  const torch::Tensor z = torch::randn({3, 8});
  for (int64_t p = 0; p < 3; ++p) {
    const torch::Tensor path = morph_pair_latents(z, p, 4, Interpolation::kSlerp);
    ASSERT_EQ(path.sizes(), (std::vector<int64_t>{4, 8}));
    EXPECT_TRUE(torch::equal(path[0], z[p]));
    // The frame after the last (t = 1) is the next latent, the next pair's first frame; the loop wraps.
    const torch::Tensor end = interpolate_latents(z[p], z[(p + 1) % 3], {1.0}, Interpolation::kSlerp);
    EXPECT_TRUE(torch::equal(end[0], z[(p + 1) % 3]));
  }
  const torch::Tensor lerp = morph_pair_latents(z, 2, 4, Interpolation::kLerp);
  EXPECT_TRUE(torch::allclose(lerp[2], (z[2] + z[0]) / 2));  // t = 2/4 between the last and the first latent
}

TEST(Morph, DecodedLoopFramesDecodeTheEndpointLatents) {
  torch::manual_seed(4);
  Vae vae(testing::tiny_vae_options(8, 3, 8, 4));
  vae->eval();
  const torch::Tensor z = torch::randn({3, 8});
  LocalCommunicator comm;
  ProcessContext ctx = testing::context_for(comm);
  std::vector<torch::Tensor> pairs(3);
  std::vector<int64_t> progress;
  decode_morph_loop(
      *vae, z, 5, Interpolation::kSlerp, {3, 8, 8}, ctx,
      [&](int64_t p, const torch::Tensor& images) { pairs[p] = images.clone(); },
      [&](int64_t done, int64_t total) {
        progress.push_back(done);
        EXPECT_EQ(total, 15);
      });
  EXPECT_EQ(progress.back(), 15);
  torch::NoGradGuard no_grad;
  for (int64_t p = 0; p < 3; ++p) {
    ASSERT_EQ(pairs[p].sizes(), (std::vector<int64_t>{5, 3, 8, 8}));
    const torch::Tensor start = vae->decode(z[p].unsqueeze(0))[0];
    EXPECT_TRUE(torch::allclose(pairs[p][0], start, 0, 1e-5)) << "pair " << p;
    // decode(mu_b): what the pair would reach at t = 1, and the next pair's first frame.
    const torch::Tensor end = vae->decode(z[(p + 1) % 3].unsqueeze(0))[0];
    EXPECT_TRUE(torch::allclose(pairs[(p + 1) % 3][0], end, 0, 1e-5));
    // The whole pair equals decoding its latent path.
    const torch::Tensor direct = vae->decode(morph_pair_latents(z, p, 5, Interpolation::kSlerp));
    EXPECT_TRUE(torch::allclose(pairs[p], direct, 0, 1e-6));
  }
  // Intermediate frames differ from both ends (the morph moves).
  EXPECT_GT((pairs[0][2] - pairs[0][0]).abs().max().item<float>(), 1e-4f);
}

TEST(Morph, Uint8FramesFollowTheOutputRange) {
  const torch::Tensor images = torch::tensor({-1.0f, 0.0f, 1.0f, 2.0f}).view({1, 1, 2, 2});
  const torch::Tensor u8 = to_uint8_frames(images, -1.0f, 1.0f);
  ASSERT_EQ(u8.sizes(), (std::vector<int64_t>{1, 2, 2, 1}));
  EXPECT_EQ(u8[0][0][0][0].item<uint8_t>(), 0);
  EXPECT_EQ(u8[0][0][1][0].item<uint8_t>(), 128);  // 127.5 rounds half away from zero
  EXPECT_EQ(u8[0][1][0][0].item<uint8_t>(), 255);
  EXPECT_EQ(u8[0][1][1][0].item<uint8_t>(), 255);  // clamped
  VaeOptions o = testing::tiny_vae_options(8, 3, 8, 4);
  o.output = VaeOutput::kSigmoid;
  EXPECT_EQ(Vae(o)->output_range(), std::make_pair(0.0f, 1.0f));
}

// --- GIF read back with giflib's decoder -----------------------------------------------------------------

struct ReadGif {
  int width = 0, height = 0, frames = 0;
  bool netscape_loop = false;
  int loop_count = -1;
  std::vector<int> delays;
  std::vector<std::vector<uint8_t>> rgb;  // per frame, H x W x 3
};

ReadGif read_gif(const std::string& path) {
  int error = 0;
  GifFileType* gif = DGifOpenFileName(path.c_str(), &error);
  EXPECT_NE(gif, nullptr) << GifErrorString(error);
  ReadGif out;
  if (gif == nullptr) return out;
  EXPECT_EQ(DGifSlurp(gif), GIF_OK) << GifErrorString(gif->Error);
  out.width = gif->SWidth;
  out.height = gif->SHeight;
  out.frames = gif->ImageCount;
  for (int i = 0; i < gif->ImageCount; ++i) {
    const SavedImage& image = gif->SavedImages[i];
    for (int e = 0; e < image.ExtensionBlockCount; ++e) {
      const ExtensionBlock& block = image.ExtensionBlocks[e];
      if (block.Function == APPLICATION_EXT_FUNC_CODE && block.ByteCount == 11 &&
          std::memcmp(block.Bytes, "NETSCAPE2.0", 11) == 0 && e + 1 < image.ExtensionBlockCount) {
        const ExtensionBlock& sub = image.ExtensionBlocks[e + 1];
        out.netscape_loop = sub.ByteCount == 3 && sub.Bytes[0] == 1;
        out.loop_count = sub.Bytes[1] | (sub.Bytes[2] << 8);
      }
    }
    GraphicsControlBlock gcb;
    EXPECT_EQ(DGifSavedExtensionToGCB(gif, i, &gcb), GIF_OK);
    out.delays.push_back(gcb.DelayTime);
    const ColorMapObject* map = image.ImageDesc.ColorMap ? image.ImageDesc.ColorMap : gif->SColorMap;
    EXPECT_NE(map, nullptr);
    EXPECT_EQ(image.ImageDesc.Width, out.width);
    EXPECT_EQ(image.ImageDesc.Height, out.height);
    std::vector<uint8_t> rgb(static_cast<size_t>(out.width) * out.height * 3);
    for (int k = 0; k < out.width * out.height; ++k) {
      const GifColorType c = map->Colors[image.RasterBits[k]];
      rgb[3 * k] = c.Red;
      rgb[3 * k + 1] = c.Green;
      rgb[3 * k + 2] = c.Blue;
    }
    out.rgb.push_back(std::move(rgb));
  }
  DGifCloseFile(gif, &error);
  return out;
}

TEST(GifWriter, GrayFramesReadBackExactlyWithLoopAndDelay) {
  testing::TempDir dir;
  const std::string path = dir.file("gray.gif");
  const int w = 7, h = 5, n = 4;
  std::vector<std::vector<uint8_t>> frames;
  {
    GifWriter gif(path, w, h, 1, gif_delay_centiseconds(12.5));
    for (int f = 0; f < n; ++f) {
      std::vector<uint8_t> pixels(w * h);
      for (int k = 0; k < w * h; ++k) pixels[k] = static_cast<uint8_t>((k * 37 + f * 61) % 256);
      gif.add_frame(pixels.data());
      frames.push_back(pixels);
    }
    EXPECT_FALSE(std::filesystem::exists(path));  // only the partial file until finish()
    gif.finish();
  }
  // Same permissions as any file this process creates (giflib's own open would make it 0600).
  { std::ofstream(dir.file("plain.txt")) << "x"; }
  EXPECT_EQ(std::filesystem::status(path).permissions(), std::filesystem::status(dir.file("plain.txt")).permissions());
  const ReadGif got = read_gif(path);
  EXPECT_EQ(got.width, w);
  EXPECT_EQ(got.height, h);
  EXPECT_EQ(got.frames, n);
  EXPECT_TRUE(got.netscape_loop);
  EXPECT_EQ(got.loop_count, 0);                   // forever
  EXPECT_EQ(got.delays, std::vector<int>(n, 8));  // 100 / 12.5
  for (int f = 0; f < got.frames; ++f) {
    for (int k = 0; k < w * h; ++k) {
      ASSERT_EQ(got.rgb[f][3 * k], frames[f][k]);
      ASSERT_EQ(got.rgb[f][3 * k + 2], frames[f][k]);
    }
  }
}

TEST(GifWriter, RgbFramesGetPalettesCloseToTheInput) {
  testing::TempDir dir;
  const std::string path = dir.file("rgb.gif");
  const int w = 32, h = 24;
  std::vector<std::vector<uint8_t>> frames;
  {
    GifWriter gif(path, w, h, 3, 10);
    for (int f = 0; f < 3; ++f) {
      std::vector<uint8_t> pixels(w * h * 3);  // smooth gradients, different per frame
      for (int y = 0; y < h; ++y) {
        for (int x = 0; x < w; ++x) {
          uint8_t* p = &pixels[(y * w + x) * 3];
          p[0] = static_cast<uint8_t>(x * 8);
          p[1] = static_cast<uint8_t>(y * 10 + f * 5);
          p[2] = static_cast<uint8_t>(255 - x * 4 - f * 20);
        }
      }
      gif.add_frame(pixels.data());
      frames.push_back(pixels);
    }
    gif.finish();
  }
  const ReadGif got = read_gif(path);
  ASSERT_EQ(got.frames, 3);
  EXPECT_EQ(got.width, w);
  EXPECT_EQ(got.height, h);
  double total = 0;
  int worst = 0;
  for (int f = 0; f < 3; ++f) {
    for (size_t k = 0; k < frames[f].size(); ++k) {
      const int d = std::abs(static_cast<int>(got.rgb[f][k]) - static_cast<int>(frames[f][k]));
      worst = std::max(worst, d);
      total += d;
    }
  }
  // Median cut on 5-bit bins, no dithering: a box can span two bins, so one channel may be off by up to 32.
  EXPECT_LE(worst, 32);
  EXPECT_LT(total / (3.0 * frames[0].size()), 5.0);  // mean error inside one bin
}

TEST(GifWriter, UnfinishedWriterLeavesNoFile) {
  testing::TempDir dir;
  const std::string path = dir.file("never.gif");
  {
    GifWriter gif(path, 4, 4, 1, 10);
    std::vector<uint8_t> pixels(16, 9);
    gif.add_frame(pixels.data());
  }
  EXPECT_FALSE(std::filesystem::exists(path));
  EXPECT_FALSE(std::filesystem::exists(path + ".partial"));
  EXPECT_THROW(gif_delay_centiseconds(0), UserError);
  EXPECT_EQ(gif_delay_centiseconds(50), 2);  // 1 cs would be shown as 10 by browsers, so 50 fps is the cap
  EXPECT_THROW(gif_delay_centiseconds(100), UserError);
}

// --- the command, in one process -------------------------------------------------------------------------

class MorphCommand : public testing::VisualCommandTest {
 protected:
  MorphCommand() : VisualCommandTest(eval_morph_command, "morph", 6) {}
};

TEST_F(MorphCommand, WritesGifStripJsonAndMaybeMp4) {
  const std::string out = dir_.file("morph");
  ASSERT_EQ(run({"--checkpoint", vae_checkpoint_, "--store", store_path_, "--indices", "3,7,11", "--frames", "4",
                 "--fps", "10", "--scale", "2", "--output", out}),
            0);
  const ReadGif gif = read_gif(out + "/morph.gif");
  EXPECT_EQ(gif.frames, 3 * 4);
  EXPECT_EQ(gif.width, 16);
  EXPECT_EQ(gif.height, 16);
  EXPECT_TRUE(gif.netscape_loop);
  EXPECT_EQ(gif.loop_count, 0);
  EXPECT_EQ(gif.delays, std::vector<int>(12, 10));
  const cv::Mat strip = cv::imread(out + "/morph_strip.png", cv::IMREAD_UNCHANGED);
  EXPECT_EQ(strip.cols, 5 * 8 + 6 * 2);  // frames + 1 columns of 8 px, 2 px gaps
  EXPECT_EQ(strip.rows, 3 * 8 + 4 * 2);  // one row per pair
  std::ifstream in(out + "/morph.json");
  const nlohmann::json doc = nlohmann::json::parse(in);
  EXPECT_EQ(doc["frames"], 12);
  EXPECT_EQ(doc["images"][1]["index"], 7);
  if (doc["mp4"].is_null()) {
    EXPECT_FALSE(doc["mp4_error"].get<std::string>().empty());  // said why
    EXPECT_FALSE(std::filesystem::exists(out + "/morph.mp4"));
  } else {
    // Read back through OpenCV (FFmpeg): every frame, at the GIF's size.
    cv::VideoCapture video(out + "/morph.mp4", cv::CAP_FFMPEG);
    ASSERT_TRUE(video.isOpened());
    EXPECT_EQ(video.get(cv::CAP_PROP_FRAME_WIDTH), 16);
    EXPECT_EQ(video.get(cv::CAP_PROP_FRAME_HEIGHT), 16);
    EXPECT_NEAR(video.get(cv::CAP_PROP_FPS), 10.0, 1e-6);
    int decoded = 0;
    cv::Mat frame;
    while (video.read(frame)) ++decoded;
    EXPECT_EQ(decoded, 12);
  }
  for (const auto& entry : std::filesystem::directory_iterator(out)) {
    EXPECT_EQ(entry.path().string().find("partial"), std::string::npos) << entry.path();
  }
}

TEST_F(MorphCommand, MinedCsvSelectsItsIndexColumnAndCountCapsIt) {
  const std::string csv = dir_.file("mined.csv");
  {
    std::ofstream f(csv);
    f << "rank,index,file,score\n1,12,\"a,b.png\",0.999\n2,5,c.png,0.998\n3,20,d.png,0.997\n";
  }
  EXPECT_EQ(read_index_column(csv), (std::vector<int64_t>{12, 5, 20}));
  const std::string out = dir_.file("mined_morph");
  ASSERT_EQ(run({"--checkpoint", vae_checkpoint_, "--store", store_path_, "--mined", csv, "--count", "2", "--frames",
                 "2", "--scale", "1", "--output", out}),
            0);
  std::ifstream in(out + "/morph.json");
  const nlohmann::json doc = nlohmann::json::parse(in);
  ASSERT_EQ(doc["images"].size(), 2u);
  EXPECT_EQ(doc["images"][0]["index"], 12);
  EXPECT_EQ(doc["images"][1]["index"], 5);
  EXPECT_EQ(read_gif(out + "/morph.gif").frames, 4);
}

TEST_F(MorphCommand, BadInputIsAUserError) {
  const std::string out = dir_.file("bad");
  const std::string empty_csv = dir_.file("empty.csv");
  {
    std::ofstream f(empty_csv);
    f << "index,file,score\n";
  }
  const std::string no_index_csv = dir_.file("noindex.csv");
  {
    std::ofstream f(no_index_csv);
    f << "file,score\na.png,1\n";
  }
  const std::vector<std::string> base = {"--checkpoint", vae_checkpoint_, "--store", store_path_, "--output", out};
  auto with = [&](std::vector<std::string> extra) {
    std::vector<std::string> flags = base;
    flags.insert(flags.end(), extra.begin(), extra.end());
    return flags;
  };
  EXPECT_THROW(run(with({"--mined", empty_csv})), UserError);  // empty selection
  EXPECT_THROW(run(with({"--mined", no_index_csv})), UserError);
  EXPECT_THROW(run(with({"--indices", "0,30"})), UserError);  // out of range
  EXPECT_THROW(run(with({"--indices", "-1,2"})), UserError);
  EXPECT_THROW(run(with({"--indices", "4"})), UserError);  // one image: nothing to morph
  EXPECT_THROW(run(with({"--indices", "1,2", "--mined", empty_csv})), UserError);
  EXPECT_THROW(run(with({"--indices", "1,2", "--count", "2"})), UserError);
  EXPECT_THROW(run(with({"--interpolation", "cubic"})), UserError);
  EXPECT_THROW(run(with({"--frames", "0"})), UserError);
  EXPECT_THROW(run(with({"--fps", "0"})), UserError);
  EXPECT_THROW(run(with({"--split", "nope"})), UserError);
  // A checkpoint of another kind.
  EXPECT_THROW(run({"--checkpoint", vit_checkpoint_, "--store", store_path_, "--output", out}), UserError);
  EXPECT_FALSE(std::filesystem::exists(out + "/morph.gif"));
}

}  // namespace
}  // namespace facetrain
