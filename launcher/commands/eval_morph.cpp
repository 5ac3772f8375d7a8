// `facetrain eval morph`: encodes chosen store images with a VAE (posterior mean), walks the latent space through
// them in a loop (lerp or slerp, N frames per pair), decodes on all ranks and writes morph.gif (giflib),
// morph.mp4 (OpenCV's FFmpeg backend, 'mp4v'; skipped with a clear message when it cannot be opened),
// morph_strip.png (one row per pair) and morph.json.
#include <torch/torch.h>

#include <cmath>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>
#include <opencv2/videoio.hpp>
#include <opencv2/videoio/registry.hpp>

#include "comm/communicator.h"
#include "launcher/threads.h"
#include "core/error.h"
#include "core/log.h"
#include "eval/image_selection.h"
#include "launcher/commands/commands.h"
#include "launcher/flags.h"
#include "launcher/commands/flag_groups.h"
#include "eval/gif_writer.h"
#include "eval/loaded_model.h"
#include "eval/morph.h"
#include "eval/files.h"
#include "eval/image_grid.h"
#include "eval/scoring.h"

namespace facetrain {
namespace {

namespace fs = std::filesystem;

// The smallest integer factor that brings the longer side to 128 px (1 for larger images).
int display_scale(int64_t requested, int side) {
  FT_USER_CHECK(requested >= 0 && requested <= 64, "--scale must be in [0, 64] (0: automatic), got " << requested);
  if (requested > 0) return static_cast<int>(requested);
  return std::max(1, (128 + side - 1) / side);
}

// H x W x C uint8 (RGB or gray) -> nearest-neighbour upscaled cv::Mat in the same channel order.
cv::Mat upscale(const uint8_t* pixels, int height, int width, int channels, int scale) {
  cv::Mat src(height, width, channels == 3 ? CV_8UC3 : CV_8UC1, const_cast<uint8_t*>(pixels));
  cv::Mat out;
  cv::resize(src, out, cv::Size(width * scale, height * scale), 0, 0, cv::INTER_NEAREST);
  return out;
}

// MP4 through OpenCV. Any failure (no FFmpeg backend, no 'mp4v' encoder, a write error) disables the video
// with a reason instead of failing the command: the GIF and strip are the primary outputs.
class Mp4Output {
 public:
  Mp4Output(const std::string& path, double fps, int width, int height) : path_(path) {
    // MPEG-4 part 2 needs even sizes; odd frames are padded by one replicated row/column.
    width_ = width + (width % 2);
    height_ = height + (height % 2);
    partial_ = (fs::path(path).parent_path() / ("." + fs::path(path).stem().string() + ".partial.mp4")).string();
    if (!cv::videoio_registry::hasBackend(cv::CAP_FFMPEG)) {
      error_ = "OpenCV has no FFmpeg video backend in this build";
      return;
    }
    try {
      writer_ = std::make_unique<cv::VideoWriter>();
      writer_->open(partial_, cv::CAP_FFMPEG, cv::VideoWriter::fourcc('m', 'p', '4', 'v'), fps,
                    cv::Size(width_, height_), /*isColor=*/true);
      if (!writer_->isOpened()) error_ = "OpenCV's FFmpeg backend could not open an 'mp4v' writer for " + partial_;
    } catch (const cv::Exception& e) {
      error_ = std::string("OpenCV VideoWriter: ") + e.what();
    }
    if (!error_.empty()) writer_.reset();
  }
  ~Mp4Output() {
    if (writer_) writer_->release();
    if (!finished_) {
      std::error_code ec;
      fs::remove(partial_, ec);
    }
  }

  bool ok() const { return writer_ != nullptr; }
  const std::string& error() const { return error_; }

  // frame: RGB or gray upscaled frame.
  void write(const cv::Mat& frame) {
    if (!writer_) return;
    cv::Mat bgr;
    cv::cvtColor(frame, bgr, frame.channels() == 3 ? cv::COLOR_RGB2BGR : cv::COLOR_GRAY2BGR);
    if (bgr.cols != width_ || bgr.rows != height_) {
      cv::copyMakeBorder(bgr, bgr, 0, height_ - bgr.rows, 0, width_ - bgr.cols, cv::BORDER_REPLICATE);
    }
    try {
      writer_->write(bgr);
    } catch (const cv::Exception& e) {
      error_ = std::string("OpenCV VideoWriter::write: ") + e.what();
      writer_.reset();
    }
  }

  // Closes the file and moves it into place; false (with error()) when nothing usable was written.
  bool finish() {
    if (!writer_) return false;
    writer_->release();
    writer_.reset();
    std::error_code ec;
    if (!fs::exists(partial_, ec) || fs::file_size(partial_, ec) == 0) {
      error_ = "OpenCV wrote no MP4 data to " + partial_;
      return false;
    }
    fs::rename(partial_, path_, ec);
    if (ec) {
      error_ = "cannot rename " + partial_ + " to " + path_ + ": " + ec.message();
      return false;
    }
    finished_ = true;
    return true;
  }

 private:
  std::string path_, partial_, error_;
  int width_ = 0, height_ = 0;
  std::unique_ptr<cv::VideoWriter> writer_;
  bool finished_ = false;
};

}  // namespace

int eval_morph_command(int argc, char** argv, ProcessContext& ctx) {
  CommandLine cli(argv[0], "Latent morphs with a VAE: encode chosen images, walk the latent space through them in "
                           "a loop, decode, write a GIF, an MP4 and a PNG strip.");
  declare_visual_flags(cli, "VAE checkpoint (.ckpt) or run directory (newest valid checkpoint)", "8");
  cli.text("frames", "frames per pair of consecutive images", "12")
      .text("interpolation", "slerp | lerp", "slerp")
      .text("fps", "frames per second of the GIF and the MP4", "12");
  if (!cli.parse(argc, argv)) return 0;
  const std::string checkpoint = cli.get("checkpoint"), store_path = cli.get("store"), output = cli.get("output");
  const int64_t frames = cli.integer("frames");
  FT_USER_CHECK(frames >= 1 && frames <= 10000, "--frames must be in [1, 10000], got " << frames);
  const Interpolation mode = parse_interpolation(cli.get("interpolation"));
  const double fps = cli.number("fps");
  const int delay_cs = gif_delay_centiseconds(fps);
  apply_thread_flag(ctx, cli.integer("threads"));

  StoreReader store(store_path);
  const StoreInfo& info = store.info();
  const std::vector<int64_t> indices = select_images(store, selection_from_flags(cli));
  FT_USER_CHECK(indices.size() >= 2, "a morph needs at least 2 images, the selection has " << indices.size());
  const int scale = display_scale(cli.integer("scale"), std::max(info.height, info.width));

  LoadedModel model = load_model_for_eval(checkpoint, cli.get("model-config"), info, ModelKind::kVae, ctx.device);
  const VaeOptions& vo = model.vae->options();
  const int64_t n = static_cast<int64_t>(indices.size());
  log("morph: " + std::to_string(n) + " images of " + store_path + ", " + std::to_string(frames) +
      " frames per pair, " + cli.get("interpolation") + ", " + std::to_string(n * frames) +
      " frames on " + std::to_string(ctx.world_size) + " rank(s)");

  agree_setup_done(*ctx.comm);  // every rank's flags, files and model are good (else: one line, no abort)

  // (collective) every rank: encode (posterior means), ranks taking contiguous slices. Batch size 1 keeps each
  // latent independent of how the images are split over ranks (batched kernels may round differently).
  const GatheredScores encoded = score_store_images(
      store_path, indices, model.normalization, /*batch_size=*/1, vo.latent_size, ctx,
      [&](const torch::Tensor& images) { return model.vae->encode(images).first; });
  const torch::Tensor latents = encoded.outputs;  // (n, latent), identical on every rank

  const std::pair<float, float> range = vae_output_range(vo);
  const float low = range.first, high = range.second;
  const int h = static_cast<int>(vo.image_size), w = static_cast<int>(vo.image_size), c = static_cast<int>(vo.channels);
  const fs::path dir(output);
  std::unique_ptr<GifWriter> gif;
  std::unique_ptr<Mp4Output> mp4;
  std::vector<torch::Tensor> pair_frames(static_cast<size_t>(n));  // uint8 (frames, H, W, C) per pair, native size
  if (ctx.rank == 0) {
    fs::create_directories(dir);
    gif = std::make_unique<GifWriter>((dir / "morph.gif").string(), w * scale, h * scale, c, delay_cs);
    mp4 = std::make_unique<Mp4Output>((dir / "morph.mp4").string(), fps, w * scale, h * scale);
    if (!mp4->ok()) log("morph: MP4 skipped: " + mp4->error());
  }
  const bool mp4_started = ctx.rank == 0 && mp4->ok();
  int64_t last_logged = -1;
  decode_morph_loop(
      model.vae, latents, frames, mode, ctx,
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
  if (ctx.rank != 0) return 0;

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
    images.push_back({{"index", i}, {"file", filenames[i]}, {"label", label},
                      {"label_name", labelled ? info.class_names[label] : std::string()}});
  }
  const nlohmann::json doc = {
      {"command", "eval morph"},
      {"checkpoint", model.source},
      {"store", store_path},
      {"images", images},
      {"latent", "posterior mean (mu) of each image"},
      {"interpolation", cli.get("interpolation")},
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
  return 0;
}

}  // namespace facetrain
