// Hugging Face / timm ViT and torchvision VGG weight loading (see pretrained.h).
#include "models/pretrained.h"

#include <array>
#include <cmath>
#include <cstring>
#include <regex>
#include <set>
#include <sstream>

#include <torch/torch.h>

#include "core/error.h"

namespace facetrain {
namespace {

bool starts_with(const std::string& s, const std::string& p) { return s.compare(0, p.size(), p) == 0; }

std::string strip_prefix(const std::string& s, const std::string& p) {
  return starts_with(s, p) ? s.substr(p.size()) : s;
}

TensorMap strip_module_prefix(const TensorMap& tensors) {
  TensorMap out;
  for (const auto& [k, v] : tensors) out[strip_prefix(k, "module.")] = v;
  return out;
}

// "width 768, depth 12, patch 16, channels 3, 197 tokens, 1000 classes" from whatever the tensors hold.
std::string describe_checkpoint(const TensorMap& t) {
  std::ostringstream s;
  auto it = t.find("patch_embed.proj.weight");
  if (it != t.end() && it->second.dim() == 4)
    s << "width " << it->second.size(0) << ", patch " << it->second.size(2) << ", channels " << it->second.size(1);
  std::set<int64_t> blocks;
  static const std::regex block_re(R"(^blocks\.(\d+)\.)");
  for (const auto& [k, v] : t) {
    std::smatch m;
    if (std::regex_search(k, m, block_re)) blocks.insert(std::stoll(m[1]));
  }
  s << (s.tellp() > 0 ? ", " : "") << "depth " << blocks.size();
  if ((it = t.find("pos_embed")) != t.end() && it->second.dim() == 3) s << ", " << it->second.size(1) << " tokens";
  if ((it = t.find("head.weight")) != t.end() && it->second.dim() == 2) s << ", " << it->second.size(0) << " classes";
  return s.str();
}

std::string describe_model(const VitOptions& o) {
  std::ostringstream s;
  s << "width " << o.width << ", patch " << o.patch_size << ", channels " << o.channels << ", depth " << o.depth << ", "
    << o.tokens() << " tokens, " << o.num_classes << " classes";
  return s.str();
}

// Bicubic resampling of the patch-grid part of a (1, 1 + g*g, D) position embedding to (1, 1 + n*n, D).
torch::Tensor resample_pos_embed(const torch::Tensor& pos, int64_t old_grid, int64_t new_grid) {
  namespace F = torch::nn::functional;
  const int64_t d = pos.size(2);
  auto cls = pos.narrow(1, 0, 1);
  auto grid = pos.narrow(1, 1, old_grid * old_grid).reshape({1, old_grid, old_grid, d}).permute({0, 3, 1, 2});
  grid = F::interpolate(grid.to(torch::kFloat), F::InterpolateFuncOptions()
                                                    .size(std::vector<int64_t>{new_grid, new_grid})
                                                    .mode(torch::kBicubic)
                                                    .align_corners(false)
                                                    .antialias(true));  // as timm's resample_abs_pos_embed
  grid = grid.permute({0, 2, 3, 1}).reshape({1, new_grid * new_grid, d}).to(pos.scalar_type());
  return torch::cat({cls, grid}, 1);
}

}  // namespace

VitNaming detect_vit_naming(const TensorMap& tensors) {
  for (const auto& [k, v] : tensors)
    if (k.find("embeddings.patch_embeddings.") != std::string::npos || k.find("encoder.layer.") != std::string::npos)
      return VitNaming::kHuggingFace;
  return VitNaming::kTimm;
}

TensorMap vit_tensors_from_huggingface(const TensorMap& tensors) {
  static const std::regex layer_re(R"(^encoder\.layer\.(\d+)\.(.+)$)");
  static const std::vector<std::pair<std::string, std::string>> layer_map = {
      {"attention.output.dense.", "attn.proj."}, {"intermediate.dense.", "mlp.fc1."}, {"output.dense.", "mlp.fc2."},
      {"layernorm_before.", "norm1."},           {"layernorm_after.", "norm2."},
  };
  TensorMap out;
  // qkv parts per "blocks.N.attn.qkv.<weight|bias>": index 0 = query, 1 = key, 2 = value, with original names.
  std::map<std::string, std::array<std::pair<std::string, torch::Tensor>, 3>> qkv;
  for (const auto& [original, tensor] : tensors) {
    const std::string k = strip_prefix(strip_prefix(original, "module."), "vit.");
    std::smatch m;
    if (k == "embeddings.cls_token") {
      out["cls_token"] = tensor;
    } else if (k == "embeddings.position_embeddings") {
      out["pos_embed"] = tensor;
    } else if (starts_with(k, "embeddings.patch_embeddings.projection.")) {
      out["patch_embed.proj." + k.substr(std::string("embeddings.patch_embeddings.projection.").size())] = tensor;
    } else if (starts_with(k, "layernorm.")) {
      out["norm." + k.substr(10)] = tensor;
    } else if (starts_with(k, "classifier.")) {
      out["head." + k.substr(11)] = tensor;
    } else if (std::regex_match(k, m, layer_re)) {
      const std::string block = "blocks." + m[1].str() + ".";
      const std::string rest = m[2].str();
      bool mapped = false;
      for (const auto& [hf, ours] : layer_map) {
        if (starts_with(rest, hf)) {
          out[block + ours + rest.substr(hf.size())] = tensor;
          mapped = true;
          break;
        }
      }
      static const char* parts[3] = {"attention.attention.query.", "attention.attention.key.",
                                     "attention.attention.value."};
      for (int p = 0; p < 3 && !mapped; ++p) {
        if (starts_with(rest, parts[p])) {
          qkv[block + "attn.qkv." + rest.substr(std::strlen(parts[p]))][p] = {original, tensor};
          mapped = true;
        }
      }
      if (!mapped) out[original] = tensor;
    } else {
      out[original] = tensor;  // e.g. pooler.dense.*, embeddings.mask_token: reported unused by the loader
    }
  }
  for (auto& [name, parts] : qkv) {
    if (parts[0].second.defined() && parts[1].second.defined() && parts[2].second.defined()) {
      out[name] = torch::cat({parts[0].second, parts[1].second, parts[2].second}, 0);
    } else {
      for (auto& [original, t] : parts)  // incomplete q/k/v: keep what exists; qkv will be reported missing
        if (t.defined()) out[original] = t;
    }
  }
  return out;
}

void load_vit_weights(Vit& model, const TensorMap& tensors, LoadReport* report, const std::string& source,
                      const VitLoadOptions& options) {
  const VitOptions& o = model->options();
  TensorMap src = detect_vit_naming(tensors) == VitNaming::kHuggingFace ? vit_tensors_from_huggingface(tensors)
                                                                        : strip_module_prefix(tensors);
  const TensorMap target = module_to_tensors(*model);
  std::vector<std::string> problems, notes, unused, fresh, loaded;

  // Head: it fits when every head tensor of the model is in the checkpoint with the same shape.
  auto is_head = [](const std::string& k) { return starts_with(k, "head.") || starts_with(k, "pre_logits."); };
  bool head_fits = true;
  for (const auto& [k, t] : target) {
    if (!is_head(k)) continue;
    auto it = src.find(k);
    head_fits = head_fits && it != src.end() && it->second.sizes() == t.sizes();
  }
  if (!head_fits) {
    auto it = src.find("head.weight");
    std::ostringstream s;
    if (it == src.end()) {
      s << "head: not in checkpoint: initialised fresh";
    } else if (it->second.dim() == 2 && it->second.size(0) != o.num_classes) {
      s << "head: " << o.num_classes << " classes, checkpoint has " << it->second.size(0) << ": initialised fresh";
    } else {
      s << "head: model " << shape_string(target.at("head.weight").sizes()) << ", checkpoint "
        << shape_string(it->second.sizes()) << (o.head_hidden > 0 ? " (two-layer head)" : "") << ": initialised fresh";
    }
    fresh.push_back(s.str());
  }

  // Position embeddings for another grid: resample (class token kept).
  auto pos = src.find("pos_embed");
  if (pos != src.end() && options.interpolate_pos_embed && pos->second.dim() == 3 && pos->second.size(0) == 1 &&
      pos->second.size(2) == o.width && pos->second.size(1) != o.tokens()) {
    const int64_t n = pos->second.size(1) - 1;
    const auto g = static_cast<int64_t>(std::llround(std::sqrt(static_cast<double>(n))));
    if (g * g == n) {
      pos->second = resample_pos_embed(pos->second, g, o.grid());
      notes.push_back("pos_embed: " + std::to_string(g) + "x" + std::to_string(g) + " grid resampled (bicubic) to " +
                      std::to_string(o.grid()) + "x" + std::to_string(o.grid()));
    }
  }

  std::vector<std::pair<torch::Tensor, torch::Tensor>> copies;
  for (const auto& [k, t] : target) {
    if (is_head(k) && !head_fits) continue;
    auto it = src.find(k);
    if (it == src.end()) {
      problems.push_back("missing " + k);
    } else if (it->second.sizes() != t.sizes()) {
      problems.push_back(k + ": model " + shape_string(t.sizes()) + " vs checkpoint " +
                         shape_string(it->second.sizes()));
    } else {
      copies.emplace_back(t, it->second);
      loaded.push_back(k);
    }
  }
  for (const auto& [k, t] : src) {
    if (target.count(k)) continue;
    if (starts_with(k, "blocks.")) {
      problems.push_back("unexpected " + k + " (model.vit.depth is " + std::to_string(o.depth) + ")");
    } else if (!is_head(k)) {
      unused.push_back(k);
    }
  }
  if (!head_fits)
    for (const auto& [k, t] : src)
      if (is_head(k)) unused.push_back(k);

  if (!problems.empty()) {
    std::ostringstream msg;
    msg << source << ": ViT weights do not fit the model (checkpoint: " << describe_checkpoint(src)
        << "; model: " << describe_model(o) << "); " << problems.size() << " problem(s): ";
    for (size_t i = 0; i < problems.size(); ++i) msg << (i ? "; " : "") << problems[i];
    throw UserError(msg.str());
  }
  {
    torch::NoGradGuard no_grad;
    for (auto& [dst, from] : copies) dst.copy_(from);
  }
  if (!head_fits) model->reset_head();
  if (report) {
    report->loaded.insert(report->loaded.end(), loaded.begin(), loaded.end());
    report->fresh.insert(report->fresh.end(), fresh.begin(), fresh.end());
    report->unused.insert(report->unused.end(), unused.begin(), unused.end());
    report->notes.insert(report->notes.end(), notes.begin(), notes.end());
  }
}

void load_vit_weights(Vit& model, const std::string& path, LoadReport* report, const VitLoadOptions& options) {
  load_vit_weights(model, read_safetensors(path), report, path, options);
}

void load_mobilenet_v2_weights(MobileNetV2& model, const TensorMap& file, LoadReport* report,
                               const std::string& source) {
  const TensorMap tensors = strip_module_prefix(file);
  TensorMap usable;
  LoadReport local;
  LoadReport& r = report ? *report : local;
  std::vector<std::string> problems;
  std::vector<std::string> missing;
  // The classifier: loaded when its shape fits, else made fresh (a new head, as torchvision users do). Every
  // other tensor, parameter or buffer, must come from the file: BatchNorm running statistics left at 0 and 1
  // would normalise every layer wrongly and nothing would say so.
  const torch::Tensor weight = model->named_parameters()["classifier.1.weight"];
  auto head = tensors.find("classifier.1.weight");
  const bool fresh_head = head == tensors.end() || head->second.sizes() != weight.sizes();
  for (const auto& [name, t] : module_to_tensors(*model)) {
    const bool classifier = name.rfind("classifier.", 0) == 0;
    if (classifier && fresh_head) continue;
    auto it = tensors.find(name);
    if (it == tensors.end()) {
      // num_batches_tracked counts a layer's training steps; BatchNorm reads it only with momentum None, which
      // these layers never use, and many converted files drop it: the only tensor that may be missing.
      const std::string counter = ".num_batches_tracked";
      const bool is_counter =
          name.size() > counter.size() && name.compare(name.size() - counter.size(), counter.size(), counter) == 0;
      if (!is_counter) missing.push_back(name);
    } else if (it->second.sizes() != t.sizes()) {
      problems.push_back(name + ": model " + shape_string(t.sizes()) + " vs file " + shape_string(it->second.sizes()));
    }
  }
  if (!problems.empty()) {
    std::ostringstream msg;
    msg << source
        << ": not a MobileNetV2 of this width (model.mobilenet_v2.width_mult) and input channels: " << problems.size()
        << " tensor(s) do not fit: " << first_few(problems);
    throw UserError(msg.str());
  }
  if (!missing.empty()) {
    throw UserError(source + ": lacks " + std::to_string(missing.size()) +
                    " tensor(s) this MobileNetV2 needs (parameters and BatchNorm statistics; only a classifier of "
                    "another class count is made fresh): " +
                    first_few(missing));
  }
  for (const auto& [name, t] : tensors) {
    if (fresh_head && name.rfind("classifier.", 0) == 0) continue;
    usable.emplace(name, t);
  }
  load_module_from_tensors(*model, usable, /*strict=*/false, source, "", &r);
  if (fresh_head) {
    std::ostringstream why;
    why << "classifier.1: " << weight.size(0) << " classes, ";
    if (head == tensors.end()) {
      why << "none in the file";
    } else {
      why << "file has " << head->second.size(0);
    }
    why << ": initialised fresh";
    r.fresh.push_back(why.str());
    for (const auto& [name, t] : tensors) {
      if (name.rfind("classifier.", 0) == 0) r.unused.push_back(name);
    }
  }
}

void load_mobilenet_v2_weights(MobileNetV2& model, const std::string& path, LoadReport* report) {
  load_mobilenet_v2_weights(model, read_safetensors(path), report, path);
}

void load_vgg_features(VggFeaturesImpl& features, const TensorMap& tensors, LoadReport* report,
                       const std::string& source) {
  static const std::regex feature_re(R"(^features\.(\d+)\.)");
  const auto last = static_cast<int64_t>(features.features_->size()) - 1;
  TensorMap within;
  std::vector<std::string> unused;
  for (const auto& [k, t] : strip_module_prefix(tensors)) {
    std::smatch m;
    if (std::regex_search(k, m, feature_re) && std::stoll(m[1]) <= last) {
      within[k] = t;
    } else {
      unused.push_back(k);
    }
  }
  LoadReport local;
  load_module_from_tensors(features, within, /*strict=*/true, source, "", &local);
  if (report) {
    report->loaded.insert(report->loaded.end(), local.loaded.begin(), local.loaded.end());
    report->unused.insert(report->unused.end(), unused.begin(), unused.end());
  }
}

}  // namespace facetrain
