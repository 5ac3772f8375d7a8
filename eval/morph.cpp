// Latent morphs (see morph.h): lerp/slerp latent paths and the distributed decode of the loop.
#include "comm/communicator.h"
#include "eval/morph.h"

#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>

#include "comm/communicator.h"
#include "core/log.h"
#include "eval/files.h"
#include "eval/gif_writer.h"
#include "eval/image_grid.h"
#include "eval/loaded_model.h"
#include "eval/mp4_writer.h"
#include "eval/scoring.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <sstream>

#include "core/error.h"
#include "runtime/setup_agreement.h"

namespace facetrain {

Interpolation parse_interpolation(const std::string& name, const std::string& what) {
  if (name == "lerp") return Interpolation::kLerp;
  if (name == "slerp") return Interpolation::kSlerp;
  throw UserError(what + " must be lerp or slerp, got '" + name + "'");
}

torch::Tensor interpolate_latents(const torch::Tensor& a, const torch::Tensor& b, const std::vector<double>& ts,
                                  Interpolation mode) {
  FT_CHECK(a.dim() == 1 && a.sizes() == b.sizes(), "latents must be two (L) vectors of one size");
  const auto a64 = a.to(torch::kFloat64), b64 = b.to(torch::kFloat64);
  double omega = 0, sin_omega = 0;
  if (mode == Interpolation::kSlerp) {
    const double na = a64.norm().item<double>(), nb = b64.norm().item<double>();
    if (na > 0 && nb > 0) {
      const double cosine = std::clamp((a64 * b64).sum().item<double>() / (na * nb), -1.0, 1.0);
      omega = std::acos(cosine);
      sin_omega = std::sin(omega);
    }
  }
  const bool spherical = mode == Interpolation::kSlerp && sin_omega > 1e-6;
  std::vector<torch::Tensor> rows;
  rows.reserve(ts.size());
  for (const double t : ts) {
    double ca = 1.0 - t, cb = t;
    if (spherical) {
      ca = std::sin((1.0 - t) * omega) / sin_omega;
      cb = std::sin(t * omega) / sin_omega;
    }
    // Exact endpoints: at t = 0 (1, 0), at t = 1 (0, 1), whatever rounding sin() does.
    if (t == 0.0) {
      ca = 1.0;
      cb = 0.0;
    } else if (t == 1.0) {
      ca = 0.0;
      cb = 1.0;
    }
    rows.push_back(ca * a64 + cb * b64);
  }
  return torch::stack(rows).to(a.scalar_type());
}

torch::Tensor morph_pair_latents(const torch::Tensor& latents, int64_t pair, int64_t frames, Interpolation mode) {
  const int64_t n = latents.size(0);
  FT_CHECK(latents.dim() == 2 && n >= 2 && pair >= 0 && pair < n && frames >= 1, "bad morph pair");
  std::vector<double> ts(static_cast<size_t>(frames));
  for (int64_t k = 0; k < frames; ++k) ts[k] = static_cast<double>(k) / static_cast<double>(frames);
  return interpolate_latents(latents[pair], latents[(pair + 1) % n], ts, mode);
}

void decode_morph_loop(ImageAutoencoder& model, const torch::Tensor& latents, int64_t frames, Interpolation mode,
                       const std::vector<int64_t>& image_shape, ProcessContext& ctx,
                       const std::function<void(int64_t, const torch::Tensor&)>& on_pair,
                       const std::function<void(int64_t, int64_t)>& on_progress) {
  torch::NoGradGuard no_grad;
  const int64_t n = latents.size(0);
  FT_CHECK(n >= 2 && frames >= 1, "a morph needs 2 or more latents and 1 or more frames");
  const int64_t world = ctx.world_size;
  const int64_t rounds = (n + world - 1) / world;
  for (int64_t round = 0; round < rounds; ++round) {
    const int64_t pair = round * world + ctx.rank;
    torch::Tensor local = torch::empty({0, image_shape.at(0), image_shape.at(1), image_shape.at(2)});
    if (pair < n) {
      // One batch per pair whatever the number of ranks: the same kernels on the same batch, so 1, 2 or 3
      // ranks decode bit-identical frames (at the same thread count).
      const auto z = morph_pair_latents(latents, pair, frames, mode).to(ctx.device);
      local = model.decode(z).to(torch::kCPU, torch::kFloat32).contiguous();
    }
    // (collective) every rank, also one without a pair in the last round.
    const torch::Tensor gathered = ctx.comm->all_gather(local, "morph frames");
    const int64_t first = round * world;
    const int64_t last = std::min(n, first + world);
    FT_CHECK(gathered.size(0) == (last - first) * frames,
             "gathered " << gathered.size(0) << " frames, expected " << (last - first) * frames);
    for (int64_t p = first; p < last; ++p) on_pair(p, gathered.narrow(0, (p - first) * frames, frames));
    if (on_progress) on_progress(last * frames, n * frames);
  }
}

torch::Tensor to_uint8_frames(const torch::Tensor& images, float low, float high) {
  FT_CHECK(images.dim() == 4 && high > low, "expected (B, C, H, W) images and high > low");
  return ((images.detach().to(torch::kCPU, torch::kFloat32) - low) * (255.0f / (high - low)))
      .round()
      .clamp(0, 255)
      .to(torch::kUInt8)
      .permute({0, 2, 3, 1})
      .contiguous();
}

namespace {

namespace fs = std::filesystem;

// H x W x C uint8 (RGB or gray) -> nearest-neighbour upscaled cv::Mat in the same channel order.
cv::Mat upscale(const uint8_t* pixels, int height, int width, int channels, int scale) {
  cv::Mat src(height, width, channels == 3 ? CV_8UC3 : CV_8UC1, const_cast<uint8_t*>(pixels));
  cv::Mat out;
  cv::resize(src, out, cv::Size(width * scale, height * scale), 0, 0, cv::INTER_NEAREST);
  return out;
}

}  // namespace

void write_latent_morph(const MorphRequest& request, ProcessContext& ctx) {
  const VisualRequest& v = request.visual;
  const std::string& store_path = v.store;
  const std::string& output = v.output;
  const int64_t frames = request.frames;
  FT_CHECK(frames >= 1 && frames <= kMaxMorphFrames, "frames " << frames);
  const Interpolation mode = parse_interpolation(request.interpolation);
  const double fps = request.fps;
  const int delay_cs = gif_delay_centiseconds(fps);

  StoreReader store(store_path);
  const StoreInfo& info = store.info();
  const std::vector<int64_t> indices = select_images(store, v.selection);
  FT_USER_CHECK(indices.size() >= 2, "a morph needs at least 2 images, the selection has " << indices.size());
  const int scale = display_scale(v.scale, info.height, info.width);

  const LoadedModel model = load_model_for_eval(v.checkpoint, v.model_config, info, ctx.device,
                                                parse_model_weights(v.weights, v.weights_name),
                                                ModelInputNames{v.checkpoint_name, v.store_name, v.weights_name});
  ImageAutoencoder& autoencoder = model.need<ImageAutoencoder>("an autoencoder (vae)");
  const int64_t n = static_cast<int64_t>(indices.size());
  log("morph: " + std::to_string(n) + " images of " + store_path + ", " + std::to_string(frames) +
      " frames per pair, " + request.interpolation + ", " + std::to_string(n * frames) + " frames on " +
      std::to_string(ctx.world_size) + " rank(s)");

  agree_setup_done(*ctx.comm);  // every rank's flags, files and model are good (else: one line, no abort)

  // (collective) every rank: encode (posterior means), ranks taking contiguous slices. Batch size 1 keeps each
  // latent independent of how the images are split over ranks (batched kernels may round differently).
  const GatheredScores encoded =
      score_store_images(store_path, indices, model.normalization, /*batch_size=*/1, autoencoder.latent_size(), ctx,
                         [&](const torch::Tensor& images) { return autoencoder.encode_mean(images); });
  const torch::Tensor latents = encoded.outputs;  // (n, latent), identical on every rank

  const std::pair<float, float> range = autoencoder.output_range();
  const float low = range.first, high = range.second;
  const int h = info.height, w = info.width, c = info.channels;
  const fs::path dir(output);
  std::unique_ptr<GifWriter> gif;
  std::unique_ptr<Mp4Writer> mp4;
  std::vector<torch::Tensor> pair_frames(static_cast<size_t>(n));  // uint8 (frames, H, W, C) per pair, native size
  if (ctx.rank == 0) {
    fs::create_directories(dir);
    gif = std::make_unique<GifWriter>((dir / "morph.gif").string(), w * scale, h * scale, c, delay_cs);
    mp4 = std::make_unique<Mp4Writer>((dir / "morph.mp4").string(), fps, w * scale, h * scale);
    if (!mp4->ok()) log("morph: MP4 skipped: " + mp4->error());
  }
  const bool mp4_started = ctx.rank == 0 && mp4->ok();
  int64_t last_logged = -1;
  decode_morph_loop(
      autoencoder, latents, frames, mode, {c, h, w}, ctx,
      [&](int64_t pair, const torch::Tensor& images) {
        if (ctx.rank != 0) return;  // (rank 0 only) writes
        const torch::Tensor u8 = to_uint8_frames(images, low, high);
        for (int64_t f = 0; f < frames; ++f) {
          const cv::Mat big = upscale(u8[f].data_ptr<uint8_t>(), h, w, c, scale);
          gif->add_frame(big.data);
          mp4->write(big);
        }
        pair_frames[pair] = u8;
      },
      [&](int64_t done, int64_t total) {
        // Progress about every 10% (and at the end), so long morphs show they are alive.
        const int64_t decile = done * 10 / total;
        if (decile != last_logged) {
          last_logged = decile;
          log("morph: decoded " + std::to_string(done) + "/" + std::to_string(total) + " frames");
        }
      });
  if (ctx.rank != 0) return;

  // (rank 0 only) close the animations, then the strip: row p = pair p's frames plus its end point, which is
  // pair p+1's first frame (decode of the next image's latent).
  gif->finish();
  const bool mp4_written = mp4->finish();
  if (mp4_started && !mp4_written) log("morph: no MP4 written: " + mp4->error());
  std::vector<torch::Tensor> rows;
  for (int64_t p = 0; p < n; ++p) {
    rows.push_back(pair_frames[p]);
    rows.push_back(pair_frames[(p + 1) % n].narrow(0, 0, 1));
  }
  const torch::Tensor strip = torch::cat(rows).permute({0, 3, 1, 2}).to(torch::kFloat32);
  write_png((dir / "morph_strip.png").string(), make_image_grid(strip, static_cast<int>(frames + 1), 0.0f, 255.0f));

  const std::vector<std::string> filenames = store.filenames();
  const std::vector<int64_t> labels = store.labels();
  nlohmann::json images = nlohmann::json::array();
  for (int64_t i : indices) {
    const int64_t label = labels[i];
    const bool labelled = label >= 0 && label < static_cast<int64_t>(info.class_names.size());
    images.push_back({{"index", i},
                      {"file", filenames[i]},
                      {"label", label},
                      {"label_name", labelled ? info.class_names[label] : std::string()}});
  }
  const nlohmann::json doc = {
      {"command", "eval morph"},
      {"checkpoint", model.source},
      {"store", store_path},
      {"images", images},
      {"latent", "posterior mean (mu) of each image"},
      {"interpolation", request.interpolation},
      {"frames_per_pair", frames},
      {"pairs", n},
      {"frames", n * frames},
      {"fps", fps},
      {"gif_delay_centiseconds", delay_cs},
      {"frame_width", w * scale},
      {"frame_height", h * scale},
      {"scale", scale},
      {"gif", "morph.gif"},
      {"mp4", mp4_written ? nlohmann::json("morph.mp4") : nlohmann::json(nullptr)},
      {"mp4_error", mp4_written ? std::string() : mp4->error()},
      {"strip", "morph_strip.png"},
      {"strip_layout", "row p: pair p (image p -> image p+1, last row back to image 0), frames_per_pair + 1 columns"}};
  write_text_file((dir / "morph.json").string(), doc.dump(2) + "\n");
  log("morph: wrote morph.gif (" + std::to_string(gif->frames()) + " frames, " + std::to_string(w * scale) + "x" +
      std::to_string(h * scale) + ")" + (mp4_written ? ", morph.mp4" : ", no MP4") +
      ", morph_strip.png and morph.json to " + output);
}

}  // namespace facetrain
