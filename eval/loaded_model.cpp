// Loading a trained model for evaluation (see loaded_model.h).
#include "eval/loaded_model.h"

#include "core/config.h"
#include "core/error.h"
#include "models/checkpoint.h"
#include "models/safetensors.h"

namespace facetrain {
namespace {

// The kind and the shape the model was trained on (checkpoint.h: "model_input", or a facetrain export's
// metadata) against the run config and the store it is evaluated on. A foreign safetensors file records
// neither: its tensors are checked against the model built for the store instead (load_model_modules: a head
// of another class count, a position embedding for another image size, a missing tensor are errors there).
void check_store_fits(const std::string& path, const StoreInfo& store, const ModelSpec& spec,
                      const std::string& store_name, const std::string& model_config) {
  if (is_safetensors_path(path)) {
    const SafetensorsMetadata metadata = read_safetensors_metadata(path);
    const auto kind = metadata.find(kExportModelKey);
    FT_USER_CHECK(kind == metadata.end() || kind->second == spec.name,
                  path << ": holds a " << kind->second << " (a facetrain export) but the run config " << model_config
                       << " builds a " << spec.name);
    if (metadata.count(kExportInputKey) == 0) return;
  }
  const StoreInfo trained = model_input_from_checkpoint(path);
  FT_USER_CHECK(trained.height == store.height && trained.width == store.width && trained.channels == store.channels,
                store_name << ": images are " << store.height << "x" << store.width << "x" << store.channels
                           << " but the model in " << path << " was trained on " << trained.height << "x"
                           << trained.width << "x" << trained.channels);
  if (spec.is_classifier()) {
    FT_USER_CHECK(trained.class_names.size() == store.class_names.size(),
                  store_name << ": has " << store.class_names.size() << " classes but the classifier in " << path
                             << " has " << trained.class_names.size());
  }
}

}  // namespace

void LoadedModel::throw_lacks(const std::string& needed) const {
  throw UserError(source_name + ": " + source + " holds a " + (spec ? spec->name : std::string("?")) +
                  " model; this command needs " + needed);
}

LoadedModel load_model_for_eval(const std::string& checkpoint, const std::string& model_config, const StoreInfo& store,
                                torch::Device device, ModelWeights weights, const ModelInputNames& names) {
  LoadedModel m;
  m.source = resolve_checkpoint_path(checkpoint, names.checkpoint);
  m.source_name = names.checkpoint;
  FT_USER_CHECK(weights == ModelWeights::kRaw || !is_safetensors_path(m.source),
                names.weights << " ema: " << m.source << " is a safetensors file, which holds one set of weights");
  m.config = model_config.empty() ? config_from_checkpoint(m.source) : load_run_config(model_config, {});
  m.spec = &model_spec_of(m.config, model_config.empty() ? m.source : model_config);
  if (!model_config.empty()) check_model_config(m.config, model_config);
  check_store_fits(m.source, store, *m.spec, names.store, model_config);
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
