// Loading a trained model for evaluation (see loaded_model.h).
#include "eval/loaded_model.h"

#include "core/error.h"
#include "core/config.h"
#include "models/checkpoint.h"

namespace facetrain {
namespace {

// The shape the model was trained on (checkpoint.h: "model_input") against the store it is evaluated on.
void check_store_fits(const std::string& path, const StoreInfo& store, ModelKind kind) {
  if (is_safetensors_path(path)) return;
  const StoreInfo trained = model_input_from_checkpoint(path);
  FT_USER_CHECK(trained.height == store.height && trained.width == store.width && trained.channels == store.channels,
                "--store: images are " << store.height << "x" << store.width << "x" << store.channels
                                       << " but the model in " << path << " was trained on " << trained.height << "x"
                                       << trained.width << "x" << trained.channels);
  if (is_classifier(kind)) {
    FT_USER_CHECK(trained.class_names.size() == store.class_names.size(),
                  "--store: has " << store.class_names.size() << " classes but the classifier in " << path << " has "
                                  << trained.class_names.size());
  }
}

template <typename Impl>
std::shared_ptr<Impl> module_as(const std::vector<NamedModule>& modules, const std::string& name) {
  for (const auto& m : modules) {
    if (m.name == name) return std::dynamic_pointer_cast<Impl>(m.module);
  }
  return nullptr;
}

}  // namespace

LoadedModel load_model_for_eval(const std::string& checkpoint, const std::string& model_config,
                                const StoreInfo& store, std::optional<ModelKind> expected_kind, torch::Device device,
                                ModelWeights weights) {
  LoadedModel m;
  m.source = resolve_checkpoint_path(checkpoint, "--checkpoint");
  m.config = model_config.empty() ? config_from_checkpoint(m.source) : load_run_config(model_config, {});
  m.kind = model_kind_of(m.config, model_config.empty() ? m.source : model_config);
  FT_USER_CHECK(!expected_kind || m.kind == *expected_kind,
                "--checkpoint: " << m.source << " holds a " << model_kind_name(m.kind) << " model; this command needs a "
                                 << model_kind_name(*expected_kind));
  check_store_fits(m.source, store, m.kind);
  m.modules = build_model_modules(m.config, store);
  load_model_modules(m.kind, m.modules, m.source, weights);
  for (auto& named : m.modules) {
    named.module->to(device);
    named.module->eval();
  }
  m.normalization = run_normalization(m.config);
  switch (m.kind) {
    case ModelKind::kVit:
      m.vit = Vit(module_as<VitImpl>(m.modules, "model"));
      m.classify = [vit = m.vit](const torch::Tensor& x) mutable { return vit->forward(x); };
      m.num_classes = m.vit->options().num_classes;
      break;
    case ModelKind::kMobileNetV2:
      m.mobilenet_v2 = MobileNetV2(module_as<MobileNetV2Impl>(m.modules, "model"));
      m.classify = [net = m.mobilenet_v2](const torch::Tensor& x) mutable { return net->forward(x); };
      m.num_classes = m.mobilenet_v2->options().num_classes;
      break;
    case ModelKind::kCnn:
      m.cnn = DcganDiscriminator(module_as<DcganDiscriminatorImpl>(m.modules, "model"));
      m.classify = [net = m.cnn](const torch::Tensor& x) mutable { return net->forward(x); };
      m.num_classes = m.cnn->options().d_outputs;
      break;
    case ModelKind::kDcgan:
      m.generator = DcganGenerator(module_as<DcganGeneratorImpl>(m.modules, "generator"));
      m.discriminator = DcganDiscriminator(module_as<DcganDiscriminatorImpl>(m.modules, "discriminator"));
      break;
    case ModelKind::kVae: m.vae = Vae(module_as<VaeImpl>(m.modules, "model")); break;
  }
  return m;
}

LoadedModel load_classifier_for_eval(const std::string& checkpoint, const std::string& model_config,
                                     const StoreInfo& store, torch::Device device, ModelWeights weights) {
  LoadedModel m = load_model_for_eval(checkpoint, model_config, store, std::nullopt, device, weights);
  FT_USER_CHECK(is_classifier(m.kind), "--checkpoint: " << m.source << " holds a " << model_kind_name(m.kind)
                                                        << " model; this command needs a classifier (vit, mobilenet_v2, cnn)");
  return m;
}

}  // namespace facetrain
