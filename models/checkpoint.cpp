// The checkpoint payload and loading from checkpoints and safetensors (see checkpoint.h).
#include "models/checkpoint.h"

#include <google/protobuf/text_format.h>

#include <filesystem>
#include <sstream>

#include "core/config.h"
#include "core/error.h"
#include "core/log.h"
#include "models/safetensors.h"
#include "models/checkpoint_store.h"

namespace facetrain {
namespace {

torch::serialize::InputArchive open_archive(const std::string& path, const Checkpoint& checkpoint) {
  torch::serialize::InputArchive archive;
  try {
    archive.load_from(checkpoint.payload.data(), checkpoint.payload.size(), torch::Device(torch::kCPU));
  } catch (const std::exception& e) {
    throw UserError(path + ": not a facetrain checkpoint payload (" + std::string(e.what()).substr(0, 120) + ")");
  }
  return archive;
}

}  // namespace

std::shared_ptr<torch::serialize::OutputArchive> make_checkpoint_archive(
    const std::function<void(torch::serialize::OutputArchive&)>& save_state, const TrainingPosition& position,
    const proto::RunConfig& config, const StoreInfo& input) {
  auto archive = std::make_shared<torch::serialize::OutputArchive>();
  save_state(*archive);
  archive->write("config", c10::IValue(to_text(config)));
  archive->write("model_input",
                 torch::tensor({static_cast<int64_t>(input.height), static_cast<int64_t>(input.width),
                                static_cast<int64_t>(input.channels), static_cast<int64_t>(input.class_names.size())}));
  archive->write("position.step", torch::tensor(position.step));
  archive->write("position.epoch", torch::tensor(position.epoch));
  archive->write("position.batch_in_epoch", torch::tensor(position.batch_in_epoch));
  archive->write("position.images_in_epoch", torch::tensor(position.images_in_epoch));
  archive->write("position.world_size", torch::tensor(position.world_size));
  archive->write("position.schedule_step_images", torch::tensor(position.schedule_step_images));
  archive->write("rng.cpu", torch::globalContext().defaultGenerator(torch::kCPU).get_state());
  return archive;
}

std::string serialize_archive(torch::serialize::OutputArchive& archive) {
  // Straight into the string (an ostringstream's growth and final copy cost a third of the time).
  std::string payload;
  archive.save_to([&payload](const void* data, size_t size) {
    payload.append(static_cast<const char*>(data), size);
    return size;
  });
  return payload;
}

std::string write_checkpoint_payload(const std::function<void(torch::serialize::OutputArchive&)>& save_state,
                                     const TrainingPosition& position, const proto::RunConfig& config,
                                     const StoreInfo& input) {
  return serialize_archive(*make_checkpoint_archive(save_state, position, config, input));
}

torch::Tensor cpu_copy(const torch::Tensor& tensor) {
  if (!tensor.defined()) return tensor;
  return tensor.detach().to(tensor.options().device(torch::kCPU), /*non_blocking=*/false, /*copy=*/true);
}

void save_module_copy(torch::serialize::OutputArchive& archive, const torch::nn::Module& module,
                      const std::function<torch::Tensor(const torch::Tensor&)>& parameter_value) {
  torch::NoGradGuard no_grad;
  for (const auto& p : module.named_parameters(/*recurse=*/false)) {
    archive.write(p.key(), cpu_copy(parameter_value ? parameter_value(p.value()) : p.value()));
  }
  for (const auto& b : module.named_buffers(/*recurse=*/false))
    archive.write(b.key(), cpu_copy(b.value()), /*is_buffer=*/true);
  for (const auto& child : module.named_children()) {
    torch::serialize::OutputArchive sub;
    save_module_copy(sub, *child.value(), parameter_value);
    archive.write(child.key(), sub);
  }
}

void load_module_in_place(torch::serialize::InputArchive& archive, torch::nn::Module& module,
                          const std::string& source) {
  torch::NoGradGuard no_grad;
  auto copy_entry = [&](const std::string& key, torch::Tensor& live, bool is_buffer) {
    torch::Tensor stored;
    FT_USER_CHECK(archive.try_read(key, stored, is_buffer), source << ": has no "
                                                                   << (is_buffer ? "buffer " : "parameter ") << key
                                                                   << " (a checkpoint of another model?)");
    FT_USER_CHECK(stored.sizes() == live.sizes(), source << ": " << key << " is " << shape_string(stored.sizes())
                                                         << " in the file, " << shape_string(live.sizes())
                                                         << " in the model");
    live.copy_(stored);
  };
  for (auto& p : module.named_parameters(/*recurse=*/false)) copy_entry(p.key(), p.value(), /*is_buffer=*/false);
  for (auto& b : module.named_buffers(/*recurse=*/false)) copy_entry(b.key(), b.value(), /*is_buffer=*/true);
  for (const auto& child : module.named_children()) {
    torch::serialize::InputArchive sub;
    FT_USER_CHECK(archive.try_read(child.key(), sub), source << ": has no module " << child.key());
    load_module_in_place(sub, *child.value(), source + " (" + child.key() + ")");
  }
}

TrainingPosition read_checkpoint_payload(const std::string& payload, const std::string& source,
                                         const std::function<void(torch::serialize::InputArchive&)>& load_state) {
  torch::serialize::InputArchive archive;
  try {
    archive.load_from(payload.data(), payload.size(), torch::Device(torch::kCPU));
  } catch (const std::exception& e) {
    throw UserError(source + ": not a facetrain checkpoint payload (" + std::string(e.what()).substr(0, 120) + ")");
  }
  // A payload that parses but lacks an entry, or holds one of the wrong shape or type (torch: c10::Error), is a
  // damaged or foreign file: one UserError.
  try {
    load_state(archive);
    TrainingPosition position;
    torch::Tensor t;
    archive.read("position.step", t);
    position.step = t.item<int64_t>();
    archive.read("position.epoch", t);
    position.epoch = t.item<int64_t>();
    archive.read("position.batch_in_epoch", t);
    position.batch_in_epoch = t.item<int64_t>();
    position.images_in_epoch = archive.try_read("position.images_in_epoch", t) ? t.item<int64_t>() : -1;
    position.world_size = archive.try_read("position.world_size", t) ? t.item<int64_t>() : 0;
    position.schedule_step_images = archive.try_read("position.schedule_step_images", t) ? t.item<int64_t>() : 0;
    torch::Tensor rng;
    archive.read("rng.cpu", rng);
    at::Generator generator = torch::globalContext().defaultGenerator(torch::kCPU);  // a handle: shares the state
    generator.set_state(rng);
    return position;
  } catch (const c10::Error& e) {
    throw UserError(source + ": damaged checkpoint payload (" + std::string(e.what_without_backtrace()).substr(0, 200) +
                    ")");
  }
}

std::string resolve_checkpoint_path(const std::string& path, const std::string& flag) {
  namespace fs = std::filesystem;
  FT_USER_CHECK(fs::exists(path), flag << ": " << path << " does not exist");
  if (!fs::is_directory(path)) return path;
  const fs::path dir = fs::exists(fs::path(path) / "checkpoints") ? fs::path(path) / "checkpoints" : fs::path(path);
  CheckpointStore store(dir.string(), 1);
  std::vector<std::string> skipped;
  auto found = store.latest_valid(&skipped);
  for (const auto& s : skipped) log(s);
  FT_USER_CHECK(found.has_value(), flag << ": no valid checkpoint in " << dir.string());
  return found->path;
}

bool is_safetensors_path(const std::string& path) {
  const std::string ext = ".safetensors";
  return path.size() >= ext.size() && path.compare(path.size() - ext.size(), ext.size(), ext) == 0;
}

proto::RunConfig config_from_checkpoint(const std::string& path) {
  FT_USER_CHECK(!is_safetensors_path(path),
                path << ": a safetensors file carries no run config; pass --model-config FILE as well");
  const Checkpoint checkpoint = read_checkpoint_file(path);
  torch::serialize::InputArchive archive = open_archive(path, checkpoint);
  c10::IValue text;
  FT_USER_CHECK(archive.try_read("config", text) && text.isString(), path << ": checkpoint has no run config");
  proto::RunConfig config;
  FT_USER_CHECK(google::protobuf::TextFormat::ParseFromString(text.toStringRef(), &config),
                path << ": the run config inside the checkpoint does not parse");
  return config;
}

ModelWeights parse_model_weights(const std::string& value, const std::string& flag) {
  FT_USER_CHECK(value == "raw" || value == "ema", flag << ": '" << value << "' is not raw or ema");
  return value == "ema" ? ModelWeights::kEma : ModelWeights::kRaw;
}

std::string weights_key(const std::string& key, ModelWeights weights) {
  return weights == ModelWeights::kEma ? key + "_ema" : key;
}

void load_module_weights(torch::nn::Module& module, const std::string& path, const std::string& key,
                         const std::string& safetensors_prefix) {
  if (is_safetensors_path(path)) {
    load_module_from_tensors(module, read_safetensors(path), /*strict=*/true, path, safetensors_prefix);
    return;
  }
  const Checkpoint checkpoint = read_checkpoint_file(path);
  torch::serialize::InputArchive archive = open_archive(path, checkpoint);
  torch::serialize::InputArchive sub;
  const bool ema = key.size() > 4 && key.compare(key.size() - 4, 4, "_ema") == 0;
  FT_USER_CHECK(archive.try_read(key, sub), path << ": checkpoint has no '" << key << "' "
                                                 << (ema ? "(no EMA weights: its run had no ema section)"
                                                         : "(is it a checkpoint of another model kind?)"));
  try {
    load_module_in_place(sub, module, path + " '" + key + "'");
  } catch (const c10::Error& e) {
    throw UserError(path + ": '" + key + "' does not fit this model (" +
                    std::string(e.what_without_backtrace()).substr(0, 200) + ")");
  }
}

StoreInfo model_input_from_checkpoint(const std::string& path) {
  int64_t height = 0, width = 0, channels = 0, classes = 0, max_classes = 0;
  if (is_safetensors_path(path)) {
    const SafetensorsMetadata metadata = read_safetensors_metadata(path);
    const auto input = metadata.find(kExportInputKey);
    FT_USER_CHECK(input != metadata.end(),
                  path << ": a safetensors file does not record the image size its model was trained on");
    std::istringstream in(input->second);
    FT_USER_CHECK(in >> height >> width >> channels >> classes, path << ": " << kExportInputKey << " '" << input->second
                                                                     << "' is not 'height width channels classes'");
    max_classes = 1 << 20;
  } else {
    const Checkpoint checkpoint = read_checkpoint_file(path);
    torch::serialize::InputArchive archive = open_archive(path, checkpoint);
    torch::Tensor shape;
    FT_USER_CHECK(archive.try_read("model_input", shape) && shape.numel() == 4 && !shape.is_complex(),
                  path << ": checkpoint does not record its model's input shape");
    const auto v = shape.reshape({4}).to(torch::kInt64);
    height = v[0].item<int64_t>();
    width = v[1].item<int64_t>();
    channels = v[2].item<int64_t>();
    classes = v[3].item<int64_t>();
    max_classes = static_cast<int64_t>(checkpoint.payload.size());
  }
  // Checked before use: the class count sizes an allocation, so it may not exceed what the file could hold.
  const int64_t kMaxSide = 1 << 16;
  FT_USER_CHECK(height >= 1 && height <= kMaxSide && width >= 1 && width <= kMaxSide && channels >= 1 &&
                    channels <= kMaxSide && classes >= 0 && classes <= max_classes,
                path << ": records a bad model input shape [" << height << ", " << width << ", " << channels
                     << "] with " << classes << " classes (damaged?)");
  StoreInfo info;
  info.height = static_cast<int>(height);
  info.width = static_cast<int>(width);
  info.channels = static_cast<int>(channels);
  for (int64_t k = 0; k < classes; ++k) info.class_names.push_back("class " + std::to_string(k));
  return info;
}

SafetensorsMetadata export_metadata(const std::string& model_name, const proto::RunConfig& config,
                                    const StoreInfo& input, ModelWeights weights) {
  std::ostringstream shape;
  shape << input.height << " " << input.width << " " << input.channels << " " << input.class_names.size();
  return {{"format", "pt"},
          {kExportModelKey, model_name},
          {"facetrain.config", to_text(config)},
          {"facetrain.weights", weights == ModelWeights::kEma ? "ema" : "raw"},
          {kExportInputKey, shape.str()}};
}

}  // namespace facetrain
