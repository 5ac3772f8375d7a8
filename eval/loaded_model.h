// A trained model loaded for evaluation: from a facetrain checkpoint (its run config travels inside) or
// from a safetensors file plus a run config (e.g. a downloaded ViT). Checks that the store it will be
// evaluated on fits the model (image size, channels, classes) and names what does not. Commands ask it for a
// capability (a classifier, an attention source, a generator, an autoencoder), never for a model kind.
#pragma once

#include <string>
#include <vector>

#include "core/config.pb.h"
#include "core/data_description.h"
#include "models/capabilities.h"
#include "models/model_spec.h"

namespace facetrain {

// How load_model_for_eval's UserErrors name its inputs: the launcher passes its flags (--checkpoint, --store,
// --weights); the defaults name them in words.
struct ModelInputNames {
  std::string checkpoint = "checkpoint", store = "store", weights = "weights";
};

struct LoadedModel {
  const ModelSpec* spec = nullptr;         // what the model is (models/model_spec.h); null until loaded
  std::string source;                      // the checkpoint or safetensors path
  std::string source_name = "checkpoint";  // how errors name `source` (ModelInputNames::checkpoint)
  proto::RunConfig config;                 // the run config the model was trained with
  Normalization normalization = Normalization::kMeanStd;
  std::vector<NamedModule> modules;  // as the spec builds them, in eval mode on the device

  // The model's capability, or UserError naming `source_name`: "checkpoint: <file> holds a dcgan model; this
  // command needs a classifier". `needed` says what the command needs, in the user's words.
  template <typename Capability>
  Capability& need(const std::string& needed) const {
    Capability* c = spec == nullptr ? nullptr : model_capability<Capability>(*spec, modules);
    if (c == nullptr) throw_lacks(needed);
    return *c;
  }
  // The same without the error: nullptr when the model does not offer it.
  template <typename Capability>
  Capability* find() const {
    return spec == nullptr ? nullptr : model_capability<Capability>(*spec, modules);
  }

 private:
  [[noreturn]] void throw_lacks(const std::string& needed) const;
};

// checkpoint: a .ckpt from a run's checkpoints/ folder, a run directory (its newest valid checkpoint), or a
// .safetensors file (then model_config, a run config file, is required). `store` is the store to evaluate
// on. The model is put in eval mode on `device`. Throws UserError naming the file or field, or the input as
// `names` calls it. `weights` picks a checkpoint's EMA weights (not in a safetensors file).
LoadedModel load_model_for_eval(const std::string& checkpoint, const std::string& model_config, const StoreInfo& store,
                                torch::Device device, ModelWeights weights = ModelWeights::kRaw,
                                const ModelInputNames& names = {});

}  // namespace facetrain
