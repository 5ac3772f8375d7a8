// The model table (see model_spec.h): one entry per model kind, and the generic code that reads it.
#include "models/model_spec.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/text_format.h>

#include "core/error.h"
#include "models/checkpoint.h"
#include "models/dcgan.h"
#include "models/mobilenet_v2.h"
#include "models/model_options.h"
#include "models/pretrained.h"
#include "models/vae.h"
#include "models/vit.h"

namespace facetrain {
namespace {

// The network `module` holds, for a spec's foreign loader.
template <typename Impl>
std::shared_ptr<Impl> network(torch::nn::Module& module) {
  auto* impl = dynamic_cast<Impl*>(&module);
  FT_CHECK(impl != nullptr, "model spec: the main module is not a " << typeid(Impl).name());
  return std::static_pointer_cast<Impl>(impl->shared_from_this());
}

std::vector<ModelSpec> make_model_specs() {
  std::vector<ModelSpec> specs;

  ModelSpec vit;
  vit.name = "vit";
  vit.config_case = proto::ModelConfig::kVit;
  vit.role = ModelRole::kClassifier;
  vit.description = "Vision Transformer classifier (seed 001; Hugging Face and timm weights)";
  vit.build = [](const proto::RunConfig& c, const StoreInfo& in) {
    return std::vector<NamedModule>{{"model", Vit(vit_options_from(c, in)).ptr()}};
  };
  vit.load_foreign = [](torch::nn::Module& m, const TensorMap& t, LoadReport* r, const std::string& source) {
    Vit net(network<VitImpl>(m));
    load_vit_weights(net, t, r, source);
  };
  vit.check_config = [](const proto::RunConfig& c, const std::string& source) {
    const auto& v = c.model().vit();
    FT_USER_CHECK(v.patch_size() > 0 && v.width() > 0 && v.depth() > 0 && v.heads() > 0,
                  source << ": fields 'model.vit.patch_size/width/depth/heads' must be > 0");
    FT_USER_CHECK(v.width() % v.heads() == 0, source << ": field 'model.vit.width' (" << v.width()
                                                     << ") must be a multiple of 'model.vit.heads' (" << v.heads()
                                                     << ")");
  };
  vit.foreign_convention = [](const TensorMap& t, const std::string& source, std::string* why) {
    *why = std::string(detect_vit_naming(t) == VitNaming::kHuggingFace ? "Hugging Face" : "timm") +
           " ViT convention of " + source + " (mean = std = 0.5)";
    return std::string("minus_one_one");
  };
  specs.push_back(vit);

  ModelSpec dcgan;
  dcgan.name = "dcgan";
  dcgan.convolutional = true;
  dcgan.config_case = proto::ModelConfig::kDcgan;
  dcgan.role = ModelRole::kGenerator;
  dcgan.description = "DCGAN generator + discriminator (seed 002)";
  dcgan.input = Normalization::kMinusOneOne;
  dcgan.main_module = "generator";
  dcgan.build = [](const proto::RunConfig& c, const StoreInfo& in) {
    const DcganOptions options = dcgan_options_from(c, in);
    return std::vector<NamedModule>{{"generator", DcganGenerator(options).ptr()},
                                    {"discriminator", DcganDiscriminator(options).ptr()}};
  };
  dcgan.check_config = [](const proto::RunConfig& c, const std::string& source) {
    const std::string& arch = c.model().dcgan().architecture();
    FT_USER_CHECK(arch == "seed32" || arch == "paper64",
                  source << ": field 'model.dcgan.architecture' must be seed32 or paper64 (got '" << arch << "')");
  };
  specs.push_back(dcgan);

  ModelSpec vae;
  vae.name = "vae";
  vae.convolutional = true;
  vae.config_case = proto::ModelConfig::kVae;
  vae.role = ModelRole::kAutoencoder;
  vae.description = "ResNet VAE with a perceptual loss (seed 004)";
  vae.input = Normalization::kMinusOneOne;
  vae.build = [](const proto::RunConfig& c, const StoreInfo& in) {
    return std::vector<NamedModule>{{"model", Vae(vae_options_from(c, in)).ptr()}};
  };
  vae.check_config = [](const proto::RunConfig& c, const std::string& source) {
    const std::string& rec = c.model().vae().reconstruction();
    FT_USER_CHECK(rec == "mse" || rec == "l1",
                  source << ": field 'model.vae.reconstruction' must be mse or l1 (got '" << rec << "')");
  };
  specs.push_back(vae);

  ModelSpec mobilenet;
  mobilenet.name = "mobilenet_v2";
  mobilenet.convolutional = true;
  mobilenet.config_case = proto::ModelConfig::kMobilenetV2;
  mobilenet.role = ModelRole::kClassifier;
  mobilenet.description = "MobileNetV2 classifier (seed 004; torchvision weights)";
  mobilenet.build = [](const proto::RunConfig& c, const StoreInfo& in) {
    return std::vector<NamedModule>{{"model", MobileNetV2(mobilenet_v2_options_from(c, in)).ptr()}};
  };
  mobilenet.load_foreign = [](torch::nn::Module& m, const TensorMap& t, LoadReport* r, const std::string& source) {
    MobileNetV2 net(network<MobileNetV2Impl>(m));
    load_mobilenet_v2_weights(net, t, r, source);
  };
  mobilenet.foreign_convention = [](const TensorMap&, const std::string& source, std::string* why) {
    *why = "torchvision convention of " + source + " (ImageNet mean/std)";
    return std::string("imagenet");
  };
  specs.push_back(mobilenet);

  ModelSpec cnn;
  cnn.name = "cnn";
  cnn.convolutional = true;
  cnn.config_case = proto::ModelConfig::kCnn;
  cnn.role = ModelRole::kClassifier;
  cnn.description = "small CNN classifier: seed 002's discriminator with a logit per class";
  cnn.build = [](const proto::RunConfig& c, const StoreInfo& in) {
    return std::vector<NamedModule>{{"model", DcganDiscriminator(cnn_options_from(c, in)).ptr()}};
  };
  specs.push_back(cnn);

  return specs;
}

// The message of the `model` oneof case a config sets (VitConfig, ...).
const google::protobuf::Message& model_section(const proto::RunConfig& config) {
  const google::protobuf::Reflection* reflection = config.model().GetReflection();
  const google::protobuf::FieldDescriptor* field =
      reflection->GetOneofFieldDescriptor(config.model(), proto::ModelConfig::descriptor()->FindOneofByName("kind"));
  FT_CHECK(field != nullptr, "model_section: the config sets no model");
  return reflection->GetMessage(config.model(), field);
}

}  // namespace

const char* model_role_name(ModelRole role) {
  switch (role) {
    case ModelRole::kClassifier: return "classifier";
    case ModelRole::kGenerator: return "generator";
    case ModelRole::kAutoencoder: return "autoencoder";
  }
  return "?";
}

const std::vector<ModelSpec>& model_specs() {
  static const std::vector<ModelSpec> specs = make_model_specs();
  return specs;
}

const ModelSpec* find_model_spec(const std::string& name) {
  for (const auto& spec : model_specs()) {
    if (spec.name == name) return &spec;
  }
  return nullptr;
}

const ModelSpec& model_spec_of(const proto::RunConfig& config, const std::string& source) {
  for (const auto& spec : model_specs()) {
    if (spec.config_case == static_cast<int>(config.model().kind_case())) return spec;
  }
  std::string names;
  for (const auto& spec : model_specs()) names += (names.empty() ? "" : ", ") + spec.name;
  throw UserError(source + ": field 'model' must set one of " + names);
}

void check_model_config(const proto::RunConfig& config, const std::string& source) {
  const ModelSpec& spec = model_spec_of(config, source);
  if (spec.check_config) spec.check_config(config, source);
}

ClassifierSettings classifier_settings(const proto::RunConfig& config) {
  const google::protobuf::Message& section = model_section(config);
  const google::protobuf::Descriptor* d = section.GetDescriptor();
  const google::protobuf::Reflection* r = section.GetReflection();
  ClassifierSettings s;
  if (const auto* f = d->FindFieldByName("class_weights")) s.class_weights = r->GetBool(section, f);
  if (const auto* f = d->FindFieldByName("label_smoothing")) s.label_smoothing = r->GetFloat(section, f);
  if (const auto* f = d->FindFieldByName("pretrained")) s.pretrained = r->GetString(section, f);
  return s;
}

Normalization run_normalization(const proto::RunConfig& config) {
  const ModelSpec& spec = model_spec_of(config);
  const std::string& n = config.data().normalization();
  if (!spec.is_classifier()) {
    FT_USER_CHECK(n == "auto" || parse_normalization(n, "data.normalization") == spec.input,
                  "data.normalization: the " << spec.name << " reads images in [-1, 1] (tanh outputs); leave it auto");
    return spec.input;
  }
  return n == "auto" ? spec.input : parse_normalization(n, "data.normalization");
}

std::string pretrained_normalization(const ModelSpec& spec, const TensorMap& tensors,
                                     const SafetensorsMetadata& metadata, const std::string& source, std::string* why) {
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
  return spec.foreign_convention ? spec.foreign_convention(tensors, source, why) : "";
}

void resolve_normalization(proto::RunConfig* config, const std::string& convention, const std::string& convention_why,
                           std::string* why) {
  const ModelSpec& spec = model_spec_of(*config);
  if (config->data().normalization() != "auto") {
    run_normalization(*config);  // checks the name
    *why = "data.normalization";
    return;
  }
  std::string name = convention;
  *why = convention_why;
  if (name.empty()) {
    name = normalization_name(spec.input);
    *why = spec.is_classifier() ? "the store's train mean/std (data.normalization auto)" : "the model's";
  }
  config->mutable_data()->set_normalization(name);
}

std::vector<NamedModule> build_model_modules(const proto::RunConfig& config, const StoreInfo& input) {
  return model_spec_of(config).build(config, input);
}

void load_model_modules(const ModelSpec& spec, std::vector<NamedModule>& modules, const std::string& path,
                        ModelWeights weights) {
  const bool safetensors = is_safetensors_path(path);
  FT_USER_CHECK(!safetensors || weights == ModelWeights::kRaw,
                "EMA weights: " << path << " is a safetensors file, which holds one set of weights");
  if (safetensors && spec.load_foreign && modules.size() == 1) {
    // Facetrain's own export or foreign names: the spec's loader handles both, and reports what it could not
    // fill; nothing may be made up here (a head of another size would be random weights).
    // A tensor the loader changed to fit (a position embedding resampled for another image size) is no
    // more the file's model than a fresh head is.
    LoadReport report;
    spec.load_foreign(*modules[0].module, read_safetensors(path), &report, path);
    if (!report.fresh.empty() || !report.notes.empty()) {
      std::string what = report.fresh.empty() ? report.notes.front() : report.fresh.front();
      const std::string suffix = ": initialised fresh";
      if (what.size() > suffix.size() && what.compare(what.size() - suffix.size(), suffix.size(), suffix) == 0) {
        what.resize(what.size() - suffix.size());
      }
      throw UserError(path + ": does not fit this " + spec.name + " (" + what +
                      "); a model to evaluate takes every tensor from its file as it is");
    }
    return;
  }
  const bool prefixed = modules.size() > 1;
  for (auto& m : modules)
    load_module_weights(*m.module, path, weights_key(m.name, weights), prefixed ? m.name + "." : "");
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
