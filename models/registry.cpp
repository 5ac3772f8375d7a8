// The model registry (see registry.h): one switch per question, no default.
#include "models/registry.h"

#include <google/protobuf/text_format.h>

#include "core/error.h"
#include "models/checkpoint.h"
#include "models/dcgan.h"
#include "models/model_options.h"
#include "models/pretrained.h"
#include "models/vae.h"
#include "models/mobilenet_v2.h"
#include "models/vit.h"

namespace facetrain {

ModelKind model_kind_of(const proto::RunConfig& config, const std::string& source) {
  switch (config.model().kind_case()) {
    case proto::ModelConfig::kVit: return ModelKind::kVit;
    case proto::ModelConfig::kDcgan: return ModelKind::kDcgan;
    case proto::ModelConfig::kVae: return ModelKind::kVae;
    case proto::ModelConfig::kMobilenetV2: return ModelKind::kMobileNetV2;
    case proto::ModelConfig::kCnn: return ModelKind::kCnn;
    case proto::ModelConfig::KIND_NOT_SET: break;
  }
  throw UserError(source + ": field 'model' must set one of vit, dcgan, vae, mobilenet_v2, cnn");
}

const char* model_kind_name(ModelKind kind) {
  switch (kind) {
    case ModelKind::kVit: return "vit";
    case ModelKind::kDcgan: return "dcgan";
    case ModelKind::kVae: return "vae";
    case ModelKind::kMobileNetV2: return "mobilenet_v2";
    case ModelKind::kCnn: return "cnn";
  }
  FT_CHECK(false, "unknown model kind " << static_cast<int>(kind));
}

Normalization model_normalization(ModelKind kind) {
  switch (kind) {
    case ModelKind::kVit: return Normalization::kMeanStd;
    case ModelKind::kDcgan: return Normalization::kMinusOneOne;
    case ModelKind::kVae: return Normalization::kMinusOneOne;
    case ModelKind::kMobileNetV2: return Normalization::kMeanStd;
    case ModelKind::kCnn: return Normalization::kMeanStd;
  }
  FT_CHECK(false, "unknown model kind " << static_cast<int>(kind));
}

Normalization run_normalization(const proto::RunConfig& config) {
  const ModelKind kind = model_kind_of(config);
  const std::string& n = config.data().normalization();
  if (!is_classifier(kind)) {
    FT_USER_CHECK(n == "auto" || parse_normalization(n, "data.normalization") == model_normalization(kind),
                  "data.normalization: the " << model_kind_name(kind) << " reads images in [-1, 1] (tanh outputs); "
                                             << "leave it auto");
    return model_normalization(kind);
  }
  return n == "auto" ? Normalization::kMeanStd : parse_normalization(n, "data.normalization");
}

std::string pretrained_normalization(ModelKind kind, const TensorMap& tensors, const SafetensorsMetadata& metadata,
                                    const std::string& source, std::string* why) {
  auto recorded = metadata.find("facetrain.config");
  if (recorded != metadata.end()) {
    proto::RunConfig run;
    std::string name = "store";
    if (google::protobuf::TextFormat::ParseFromString(recorded->second, &run) && run.data().normalization() != "auto") {
      name = run.data().normalization();
    }
    *why = "what the run exported to " + source + " used";
    return name;
  }
  switch (kind) {
    case ModelKind::kVit:
      *why = std::string(detect_vit_naming(tensors) == VitNaming::kHuggingFace ? "Hugging Face" : "timm") +
             " ViT convention of " + source + " (mean = std = 0.5)";
      return "minus_one_one";
    case ModelKind::kMobileNetV2:
      *why = "torchvision convention of " + source + " (ImageNet mean/std)";
      return "imagenet";
    case ModelKind::kDcgan:
    case ModelKind::kVae:
    case ModelKind::kCnn: break;
  }
  return "";
}

void resolve_normalization(proto::RunConfig* config, const std::string& convention, const std::string& convention_why,
                           std::string* why) {
  const ModelKind kind = model_kind_of(*config);
  if (config->data().normalization() != "auto") {
    run_normalization(*config);  // checks the name
    *why = "data.normalization";
    return;
  }
  std::string name = convention;
  *why = convention_why;
  if (name.empty()) {
    name = is_classifier(kind) ? "store" : normalization_name(model_normalization(kind));
    *why = is_classifier(kind) ? "the store's train mean/std (data.normalization auto)" : "the model's";
  }
  config->mutable_data()->set_normalization(name);
}

bool is_classifier(ModelKind kind) {
  switch (kind) {
    case ModelKind::kVit: return true;
    case ModelKind::kDcgan: return false;
    case ModelKind::kVae: return false;
    case ModelKind::kMobileNetV2: return true;
    case ModelKind::kCnn: return true;
  }
  FT_CHECK(false, "unknown model kind " << static_cast<int>(kind));
}

std::vector<NamedModule> build_model_modules(const proto::RunConfig& config, const StoreInfo& input) {
  switch (model_kind_of(config)) {
    case ModelKind::kVit: return {{"model", Vit(vit_options_from(config, input)).ptr()}};
    case ModelKind::kDcgan: {
      const DcganOptions options = dcgan_options_from(config, input);
      return {{"generator", DcganGenerator(options).ptr()}, {"discriminator", DcganDiscriminator(options).ptr()}};
    }
    case ModelKind::kVae: return {{"model", Vae(vae_options_from(config, input)).ptr()}};
    case ModelKind::kMobileNetV2:
      return {{"model", MobileNetV2(mobilenet_v2_options_from(config, input)).ptr()}};
    case ModelKind::kCnn: return {{"model", DcganDiscriminator(cnn_options_from(config, input)).ptr()}};
  }
  FT_CHECK(false, "unknown model kind");
}

void load_model_modules(ModelKind kind, std::vector<NamedModule>& modules, const std::string& path,
                        ModelWeights weights) {
  const bool safetensors = is_safetensors_path(path);
  FT_USER_CHECK(!safetensors || weights == ModelWeights::kRaw,
                "--weights ema: " << path << " is a safetensors file, which holds one set of weights");
  const bool prefixed = modules.size() > 1;
  switch (kind) {
    case ModelKind::kVit:
      if (safetensors) {
        // Facetrain's own export or a Hugging Face / timm file: the pretrained loader handles all three.
        auto vit = std::dynamic_pointer_cast<VitImpl>(modules.at(0).module);
        FT_CHECK(vit != nullptr, "registry: the ViT's module is not a VitImpl");
        Vit holder(vit);
        load_vit_weights(holder, path);
        return;
      }
      break;
    case ModelKind::kMobileNetV2:
      if (safetensors) {
        // A facetrain export or a torchvision state dict: the same names.
        auto net = std::dynamic_pointer_cast<MobileNetV2Impl>(modules.at(0).module);
        FT_CHECK(net != nullptr, "registry: the MobileNetV2's module is not a MobileNetV2Impl");
        MobileNetV2 holder(net);
        load_mobilenet_v2_weights(holder, path);
        return;
      }
      break;
    case ModelKind::kDcgan:
    case ModelKind::kVae:
    case ModelKind::kCnn:
      break;
  }
  for (auto& m : modules) load_module_weights(*m.module, path, weights_key(m.name, weights), prefixed ? m.name + "." : "");
}

void save_model_modules(torch::serialize::OutputArchive& archive, const std::vector<NamedModule>& modules) {
  for (const auto& m : modules) {
    torch::serialize::OutputArchive sub;
    m.module->save(sub);
    archive.write(m.name, sub);
  }
}

TensorMap model_modules_to_tensors(const std::vector<NamedModule>& modules) {
  if (modules.size() == 1) return module_to_tensors(*modules[0].module);
  TensorMap tensors;
  for (const auto& m : modules) {
    for (auto& [name, t] : module_to_tensors(*m.module, m.name + ".")) tensors[name] = t;
  }
  return tensors;
}

}  // namespace facetrain
