// A trained model loaded for evaluation: from a facetrain checkpoint (its run config travels inside) or
// from a safetensors file plus a run config (e.g. a downloaded ViT). Checks that the store it will be
// evaluated on fits the model (image size, channels, classes) and names what does not.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "datastore/loader.h"
#include <functional>

#include "models/dcgan.h"
#include "models/mobilenet_v2.h"
#include "models/vae.h"
#include "models/vit.h"
#include "core/config.pb.h"
#include "models/registry.h"

namespace facetrain {

struct LoadedModel {
  ModelKind kind = ModelKind::kVit;
  std::string source;               // the checkpoint or safetensors path
  proto::RunConfig config;          // the run config the model was trained with
  Normalization normalization = Normalization::kMeanStd;
  std::vector<NamedModule> modules;  // as the registry builds them; the typed handles below share them
  Vit vit{nullptr};                 // kind == kVit
  DcganGenerator generator{nullptr};  // kind == kDcgan
  DcganDiscriminator discriminator{nullptr};
  Vae vae{nullptr};                 // kind == kVae
  MobileNetV2 mobilenet_v2{nullptr};  // kind == kMobileNetV2
  DcganDiscriminator cnn{nullptr};  // kind == kCnn (its layout with a logit per class)
  // Classifiers (is_classifier(kind)): images -> logits, and the number of classes.
  std::function<torch::Tensor(const torch::Tensor&)> classify;
  int64_t num_classes = 0;
};

// checkpoint: a .ckpt from a run's checkpoints/ folder, a run directory (its newest valid checkpoint), or a
// .safetensors file (then model_config, a run config file, is required). `store` is the store to evaluate
// on; `expected_kind` (std::nullopt for any) makes a checkpoint of another kind an error.
// The model is put in eval mode on `device`. Throws UserError naming the file, flag or field.
// `weights` picks a checkpoint's EMA weights (--weights ema).
LoadedModel load_model_for_eval(const std::string& checkpoint, const std::string& model_config,
                                const StoreInfo& store, std::optional<ModelKind> expected_kind, torch::Device device,
                                ModelWeights weights = ModelWeights::kRaw);
// The same for commands that take any classifier (eval metrics, eval mine, the classifier of eval samples):
// UserError naming --checkpoint when the file holds another kind.
LoadedModel load_classifier_for_eval(const std::string& checkpoint, const std::string& model_config,
                                     const StoreInfo& store, torch::Device device,
                                     ModelWeights weights = ModelWeights::kRaw);

}  // namespace facetrain
