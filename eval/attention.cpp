// ViT attention maps (see attention.h): class-token attention of the last block, attention rollout, min-max
// normalisation and the heat-map overlay (OpenCV resize, applyColorMap and addWeighted).
#include "eval/attention.h"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "comm/communicator.h"
#include "core/log.h"
#include "eval/files.h"
#include "eval/image_grid.h"
#include "eval/loaded_model.h"
#include "eval/scoring.h"

#include <torch/torch.h>

#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>

#include "core/error.h"
#include "runtime/setup_agreement.h"

namespace facetrain {
namespace {

void check_attention(const std::vector<torch::Tensor>& attention) {
  FT_CHECK(!attention.empty(), "no attention blocks");
  for (const auto& a : attention) {
    FT_CHECK(a.dim() == 4 && a.size(2) == a.size(3) && a.size(2) >= 2,
             "attention must be (B, heads, T, T), got " << a.sizes());
    FT_CHECK(a.sizes() == attention.front().sizes(), "blocks disagree on the attention shape");
  }
}

}  // namespace

torch::Tensor class_token_attention(const std::vector<torch::Tensor>& attention) {
  check_attention(attention);
  const torch::Tensor& last = attention.back();
  // (B, heads, T, T) -> class-token query row 0 -> keys 1.. (the patches) -> mean over heads: (B, T-1).
  return last.select(2, 0).narrow(2, 1, last.size(3) - 1).to(torch::kFloat32).mean(1);
}

torch::Tensor attention_rollout(const std::vector<torch::Tensor>& attention) {
  check_attention(attention);
  const int64_t t = attention.front().size(2);
  const auto eye = torch::eye(t, torch::kFloat64).to(attention.front().device());
  torch::Tensor rollout;
  for (const auto& a : attention) {
    auto mixed = a.to(torch::kFloat64).mean(1) + eye;                  // (B, T, T): heads averaged, residual added
    mixed = mixed / mixed.sum(-1, /*keepdim=*/true);                   // rows sum to 1 again
    rollout = rollout.defined() ? torch::bmm(mixed, rollout) : mixed;  // later blocks multiply from the left
  }
  return rollout.select(1, 0).narrow(1, 1, t - 1).to(torch::kFloat32);
}

torch::Tensor normalize_maps(const torch::Tensor& maps) {
  FT_CHECK(maps.dim() == 2, "maps must be (B, P)");
  auto m = maps.to(torch::kFloat64);
  const auto low = std::get<0>(m.min(1, true));
  const auto high = std::get<0>(m.max(1, true));
  const auto spread = high - low;
  const auto flat = spread <= high.abs() * 1e-12;
  auto out = (m - low) / torch::where(flat, torch::ones_like(spread), spread);
  out = torch::where(flat, torch::zeros_like(out), out);
  return out.clamp(0.0, 1.0).to(torch::kFloat32);
}

std::vector<uint8_t> upscale_rgb(const uint8_t* image, int height, int width, int channels, int scale) {
  FT_CHECK(channels == 1 || channels == 3, "images must have 1 or 3 channels, got " << channels);
  FT_CHECK(scale >= 1, "scale must be >= 1");
  cv::Mat src(height, width, channels == 3 ? CV_8UC3 : CV_8UC1, const_cast<uint8_t*>(image));
  cv::Mat rgb;
  if (channels == 1) {
    cv::cvtColor(src, rgb, cv::COLOR_GRAY2RGB);
  } else {
    rgb = src.clone();
  }
  cv::Mat big;
  cv::resize(rgb, big, cv::Size(width * scale, height * scale), 0, 0, cv::INTER_NEAREST);
  return std::vector<uint8_t>(big.datastart, big.dataend);
}

std::vector<uint8_t> overlay_heat_map(const uint8_t* image, int height, int width, int channels, const float* map,
                                      int grid, int scale, double alpha) {
  FT_CHECK(grid >= 1 && alpha >= 0 && alpha <= 1, "bad overlay arguments");
  const std::vector<uint8_t> base = upscale_rgb(image, height, width, channels, scale);
  cv::Mat base_mat(height * scale, width * scale, CV_8UC3, const_cast<uint8_t*>(base.data()));

  // Bicubic upsampling of the patch grid to the display size; cubic overshoots a little, hence the clamp.
  cv::Mat small(grid, grid, CV_32FC1, const_cast<float*>(map));
  cv::Mat up;
  cv::resize(small, up, base_mat.size(), 0, 0, cv::INTER_CUBIC);
  cv::Mat heat8;
  up.convertTo(heat8, CV_8UC1, 255.0);  // saturates: values outside [0, 1] clamp to 0 / 255
  cv::Mat colour_bgr, colour;
  cv::applyColorMap(heat8, colour_bgr, cv::COLORMAP_JET);
  cv::cvtColor(colour_bgr, colour, cv::COLOR_BGR2RGB);

  cv::Mat blended;
  cv::addWeighted(base_mat, 1.0 - alpha, colour, alpha, 0.0, blended);
  return std::vector<uint8_t>(blended.datastart, blended.dataend);
}

namespace {

constexpr int kImagesPerGridRow = 4;

ImageGrid rgb_image(std::vector<uint8_t> pixels, int height, int width) {
  ImageGrid g;
  g.height = height;
  g.width = width;
  g.channels = 3;
  g.pixels = std::move(pixels);
  return g;
}

std::vector<float> row_vector(const torch::Tensor& row) {
  const auto c = row.to(torch::kFloat32).contiguous();
  return std::vector<float>(c.data_ptr<float>(), c.data_ptr<float>() + c.numel());
}

}  // namespace

AttentionMethods parse_attention_methods(const std::string& name, const std::string& what) {
  if (name == "both") return {true, true};
  if (name == "cls") return {true, false};
  if (name == "rollout") return {false, true};
  throw UserError(what + " must be cls, rollout or both, got '" + name + "'");
}

void write_attention_maps(const AttentionRequest& request, ProcessContext& ctx) {
  const VisualRequest& v = request.visual;
  const AttentionMethods methods = parse_attention_methods(request.method, "method");
  const double alpha = request.alpha;
  const int64_t batch_size = request.batch_size;
  FT_CHECK(alpha >= 0 && alpha <= 1 && batch_size >= 1, "alpha " << alpha << ", batch_size " << batch_size);
  const std::string& store_path = v.store;
  const std::string& output = v.output;

  StoreReader store(store_path);
  const StoreInfo& info = store.info();
  const std::vector<int64_t> indices = select_images(store, v.selection);
  const int scale = display_scale(v.scale, info.height, info.width);

  const LoadedModel model = load_model_for_eval(v.checkpoint, v.model_config, info, ctx.device,
                                                parse_model_weights(v.weights, v.weights_name),
                                                ModelInputNames{v.checkpoint_name, v.store_name, v.weights_name});
  AttentionSource& source = model.need<AttentionSource>("a model with attention maps (vit)");
  const int64_t classes = model.need<ImageClassifier>("a classifier").num_classes();
  const int grid = static_cast<int>(source.patch_grid());
  const int64_t patches = source.patch_grid() * source.patch_grid();
  log("attention: " + std::to_string(indices.size()) + " images of " + store_path + " on " +
      std::to_string(ctx.world_size) + " rank(s), " + std::to_string(grid) + "x" + std::to_string(grid) + " patches, " +
      std::to_string(source.attention_blocks()) + " blocks");

  agree_setup_done(*ctx.comm);  // every rank's flags, files and model are good (else: one line, no abort)

  // (collective) every rank: ranks score contiguous slices (eval_shard); rows come back in selection order.
  // One row per image: logits | class-token map (raw) | rollout map (raw).
  const GatheredScores scores = score_store_images(
      store_path, indices, model.normalization, batch_size, classes + 2 * patches, ctx,
      [&](const torch::Tensor& images) {
        const ClassifierAttention out = source.forward_with_attention(images);
        return torch::cat({out.logits.to(torch::kFloat32), class_token_attention(out.attention).to(torch::kFloat32),
                           attention_rollout(out.attention).to(torch::kFloat32)},
                          1);
      });
  if (ctx.rank != 0) return;

  // (rank 0 only) overlays, grid and JSON.
  const torch::Tensor logits = scores.outputs.narrow(1, 0, classes);
  const torch::Tensor probabilities = torch::softmax(logits, 1);
  const torch::Tensor predicted = probabilities.argmax(1);
  const torch::Tensor cls_raw = scores.outputs.narrow(1, classes, patches).contiguous();
  const torch::Tensor rollout_raw = scores.outputs.narrow(1, classes + patches, patches).contiguous();
  const torch::Tensor cls_maps = normalize_maps(cls_raw).contiguous();
  const torch::Tensor rollout_maps = normalize_maps(rollout_raw).contiguous();

  const int h = info.height, w = info.width, c = info.channels;
  const int n = static_cast<int>(indices.size());
  std::vector<uint8_t> pixels(static_cast<size_t>(n) * store.image_bytes());
  store.read_images(indices.data(), n, pixels.data());
  const std::vector<std::string> filenames = store.filenames();

  const int columns = 1 + (methods.cls ? 1 : 0) + (methods.rollout ? 1 : 0);
  const int dh = h * scale, dw = w * scale;
  torch::Tensor tiles = torch::empty({n * columns, dh, dw, 3}, torch::kUInt8);
  auto put_tile = [&](int slot, const std::vector<uint8_t>& rgb) {
    std::memcpy(tiles[slot].data_ptr<uint8_t>(), rgb.data(), rgb.size());
  };
  std::filesystem::create_directories(output);
  nlohmann::json images = nlohmann::json::array();
  for (int i = 0; i < n; ++i) {
    const uint8_t* image = pixels.data() + static_cast<size_t>(i) * store.image_bytes();
    const int64_t index = indices[i];
    const int64_t label = scores.labels[i].item<int64_t>();
    const int64_t prediction = predicted[i].item<int64_t>();
    const bool labelled = label >= 0 && label < static_cast<int64_t>(info.class_names.size());
    nlohmann::json entry = {{"index", index},
                            {"file", filenames[index]},
                            {"label", label},
                            {"label_name", labelled ? info.class_names[label] : std::string()},
                            {"prediction", prediction},
                            {"prediction_name", info.class_names.at(prediction)},
                            {"probability", probabilities[i][prediction].item<double>()}};
    int slot = i * columns;
    put_tile(slot++, upscale_rgb(image, h, w, c, scale));
    nlohmann::json files = nlohmann::json::object();
    auto render = [&](const char* name, const torch::Tensor& maps, const torch::Tensor& raw) {
      std::vector<uint8_t> rgb = overlay_heat_map(image, h, w, c, maps[i].data_ptr<float>(), grid, scale, alpha);
      const std::string file = "image_" + std::to_string(index) + "_" + name + ".png";
      write_png((std::filesystem::path(output) / file).string(), rgb_image(rgb, dh, dw));
      put_tile(slot++, rgb);
      files[name] = file;
      entry[std::string(name) + "_map"] = row_vector(raw[i]);  // raw weights, grid x grid row-major
    };
    if (methods.cls) render("cls", cls_maps, cls_raw);
    if (methods.rollout) render("rollout", rollout_maps, rollout_raw);
    entry["files"] = files;
    images.push_back(entry);
  }
  // Grid: per image the image, then each method's overlay, side by side; up to 4 images per grid row.
  const int images_per_row = std::min(n, kImagesPerGridRow);
  const ImageGrid grid_image =
      make_image_grid(tiles.permute({0, 3, 1, 2}).to(torch::kFloat32), columns * images_per_row, 0.0f, 255.0f);
  write_png((std::filesystem::path(output) / "attention_grid.png").string(), grid_image);

  nlohmann::json columns_json = nlohmann::json::array({"image"});
  if (methods.cls) columns_json.push_back("cls");
  if (methods.rollout) columns_json.push_back("rollout");
  const nlohmann::json doc = {
      {"command", "eval attention"},
      {"checkpoint", model.source},
      {"store", store_path},
      {"grid", grid},
      {"patch_pixels", info.height / std::max(grid, 1)},  // image pixels per patch side (a stem included)
      {"blocks", source.attention_blocks()},
      {"heads", source.attention_heads()},
      {"methods",
       {{"cls", "last block, class-token row (query = token 0) to the patches, mean over heads"},
        {"rollout", "Abnar & Zuidema 2020: prod over blocks of (mean_heads(A) + I) / 2, class-token row"}}},
      {"normalisation", "per image min-max to [0, 1]; a map with no spread becomes 0"},
      {"alpha", alpha},
      {"scale", scale},
      {"grid_file", "attention_grid.png"},
      {"grid_columns", columns_json},
      {"grid_images_per_row", images_per_row},
      {"images", images}};
  write_text_file((std::filesystem::path(output) / "attention.json").string(), doc.dump(2) + "\n");
  log("attention: wrote " + std::to_string(n) + " images' maps, attention_grid.png and attention.json to " + output);
}

}  // namespace facetrain
