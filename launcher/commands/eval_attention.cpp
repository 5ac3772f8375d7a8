// `facetrain eval attention`: ViT attention maps of chosen store images — the last block's class-token
// attention and attention rollout — as heat-map overlays per image, one grid, and attention.json.
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "comm/communicator.h"
#include "launcher/threads.h"
#include "core/error.h"
#include "core/log.h"
#include "eval/attention.h"
#include "eval/image_selection.h"
#include "launcher/commands/commands.h"
#include "launcher/flags.h"
#include "launcher/commands/flag_groups.h"
#include "eval/loaded_model.h"
#include "eval/morph.h"
#include "eval/files.h"
#include "eval/image_grid.h"
#include "eval/scoring.h"

namespace facetrain {
namespace {

constexpr int kImagesPerGridRow = 4;

struct Methods {
  bool cls = true, rollout = true;
};

Methods parse_method(const std::string& name) {
  if (name == "both") return {true, true};
  if (name == "cls") return {true, false};
  if (name == "rollout") return {false, true};
  throw UserError("--method must be cls, rollout or both, got '" + name + "'");
}

// Integer upscale so that small images (Fashion-MNIST's 28 px) are readable: the smallest factor reaching
// 128 px on the longer side, 1 for images that are already that large.
int display_scale(int64_t requested, int height, int width) {
  FT_USER_CHECK(requested >= 0 && requested <= 64, "--scale must be in [0, 64] (0: automatic), got " << requested);
  if (requested > 0) return static_cast<int>(requested);
  const int side = std::max(height, width);
  return std::max(1, (128 + side - 1) / side);
}

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

int eval_attention_command(int argc, char** argv, ProcessContext& ctx) {
  CommandLine cli(argv[0], "ViT attention maps of store images: the last block's class-token attention (heads "
                           "averaged) and attention rollout, overlaid as heat maps.");
  cli.text("method", "cls | rollout | both", "both").text("alpha", "heat-map opacity in [0, 1]", "0.5");
  declare_visual_flags(cli, "ViT checkpoint (.ckpt), run directory (newest valid checkpoint) or .safetensors", "16");
  cli.text("batch-size", "images per forward pass per rank", "32");
  if (!cli.parse(argc, argv)) return 0;
  const std::string checkpoint = cli.get("checkpoint"), store_path = cli.get("store"), output = cli.get("output");
  const Methods methods = parse_method(cli.get("method"));
  const double alpha = cli.number("alpha");
  FT_USER_CHECK(alpha >= 0 && alpha <= 1, "--alpha must be in [0, 1], got " << alpha);
  const int64_t batch_size = cli.integer("batch-size");
  FT_USER_CHECK(batch_size >= 1, "--batch-size must be >= 1, got " << batch_size);
  apply_thread_flag(ctx, cli.integer("threads"));

  StoreReader store(store_path);
  const StoreInfo& info = store.info();
  const std::vector<int64_t> indices = select_images(store, selection_from_flags(cli));
  const int scale = display_scale(cli.integer("scale"), info.height, info.width);

  LoadedModel model = load_model_for_eval(checkpoint, cli.get("model-config"), info, ModelKind::kVit, ctx.device);
  const VitOptions& vo = model.vit->options();
  const int64_t classes = vo.num_classes, patches = vo.num_patches();
  const int grid = static_cast<int>(vo.grid());
  log("attention: " + std::to_string(indices.size()) + " images of " + store_path + " on " +
      std::to_string(ctx.world_size) + " rank(s), " + std::to_string(grid) + "x" + std::to_string(grid) + " patches, " +
      std::to_string(vo.depth) + " blocks");

  agree_setup_done(*ctx.comm);  // every rank's flags, files and model are good (else: one line, no abort)

  // (collective) every rank: ranks score contiguous slices (eval_shard); rows come back in selection order.
  // One row per image: logits | class-token map (raw) | rollout map (raw).
  const GatheredScores scores = score_store_images(
      store_path, indices, model.normalization, batch_size, classes + 2 * patches, ctx,
      [&](const torch::Tensor& images) {
        VitOutput out = model.vit->forward_with_attention(images);
        return torch::cat({out.logits.to(torch::kFloat32), class_token_attention(out.attention).to(torch::kFloat32),
                           attention_rollout(out.attention).to(torch::kFloat32)},
                          1);
      });
  if (ctx.rank != 0) return 0;

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
      {"patch_size", vo.patch_size},
      {"blocks", vo.depth},
      {"heads", vo.heads},
      {"methods", {{"cls", "last block, class-token row (query = token 0) to the patches, mean over heads"},
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
  return 0;
}

}  // namespace facetrain
