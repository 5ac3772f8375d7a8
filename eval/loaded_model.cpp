// Loading a trained model for evaluation (see loaded_model.h).
#include "eval/loaded_model.h"

#include "core/config.h"
#include "core/error.h"
#include "models/checkpoint.h"

namespace facetrain {
namespace {

// The shape the model was trained on (checkpoint.h: "model_input") against the store it is evaluated on. A
// safetensors file records no shape: its tensors are checked against the model built for the store instead
// (load_model_modules).
void check_store_fits(const std::string& path, const StoreInfo& store, const ModelSpec& spec,
                      const std::string& store_name) {
  if (is_safetensors_path(path)) return;
  const StoreInfo trained = model_input_from_checkpoint(path);
  FT_USER_CHECK(trained.height == store.height && trained.width == store.width && trained.channels == store.channels,
                store_name << ": images are " << store.height << "x" << store.width << "x" << store.channels
                                       << " but the model in " << path << " was trained on " << trained.height << "x"
                                       << trained.width << "x" << trained.channels);
  if (spec.is_classifier()) {
    FT_USER_CHECK(trained.class_names.size() == store.class_names.size(),
                  store_name << ": has " << store.class_names.size() << " classes but the classifier in " << path << " has "
                                  << trained.class_names.size());
  }
}

}  // namespace

void LoadedModel::throw_lacks(const std::string& needed) const {
  throw UserError(source_name + ": " + source + " holds a " + (spec ? spec->name : std::string("?")) +
                  " model; this command needs " + needed);
}

LoadedModel load_model_for_eval(const std::string& checkpoint, const std::string& model_config,
                                const StoreInfo& store, torch::Device device, ModelWeights weights,
                                const ModelInputNames& names) {
  LoadedModel m;
  m.source = resolve_checkpoint_path(checkpoint, names.checkpoint);
  m.source_name = names.checkpoint;
  FT_USER_CHECK(weights == ModelWeights::kRaw || !is_safetensors_path(m.source),
                names.weights << " ema: " << m.source << " is a safetensors file, which holds one set of weights");
  m.config = model_config.empty() ? config_from_checkpoint(m.source) : load_run_config(model_config, {});
  m.spec = &model_spec_of(m.config, model_config.empty() ? m.source : model_config);
  if (!model_config.empty()) check_model_config(m.config, model_config);
  check_store_fits(m.source, store, *m.spec, names.store);
  m.modules = m.spec->build(m.config, store);
  load_model_modules(*m.spec, m.modules, m.source, weights);
  for (auto& named : m.modules) {
    named.module->to(device);
    named.module->eval();
  }
  m.normalization = run_normalization(m.config);
  return m;
}

}  // namespace facetrain
