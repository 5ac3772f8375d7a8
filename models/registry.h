// The model registry: every question generic code asks about a model kind (its name, its pixel scaling, the
// modules it is made of, how its weights load) is answered here, by one switch per question over the run
// config's `model` oneof with no default, so adding a case to config.proto makes the compiler list each
// place to fill in (-Werror=switch). The training side registers its task in trainer/task.cpp the same way.
//
// Adding a model: its files in models/ (the network), its message and oneof case in core/config.proto, its
// options in model_options.{h,cpp}, one case per switch in registry.cpp, its task in trainer/ with its case in
// trainer/task.cpp, and its tests. Eval, export and checkpoints then handle it through this header.
#pragma once

#include <torch/torch.h>

#include <memory>
#include <string>
#include <vector>

#include "core/config.pb.h"
#include "datastore/loader.h"
#include "datastore/store.h"
#include "models/checkpoint.h"
#include "models/safetensors.h"

namespace facetrain {

enum class ModelKind { kVit, kDcgan, kVae, kMobileNetV2, kCnn };

// The kind a run config selects. Throws UserError naming `source` when the config sets no model.
ModelKind model_kind_of(const proto::RunConfig& config, const std::string& source = "the run config");
// "vit" | "dcgan" | "vae" | "mobilenet_v2" | "cnn": the name used in logs, checkpoint metadata and eval's messages.
const char* model_kind_name(ModelKind kind);
// How the loader scales pixels for this kind (classifiers: the store's mean/std; generative models: [-1, 1]).
Normalization model_normalization(ModelKind kind);
// The input normalization of a run: data.normalization for classifiers ("auto": "store"; train resolves
// "auto" first: resolve_normalization), the model's own for the generative ones (UserError naming
// data.normalization when a run sets another).
Normalization run_normalization(const proto::RunConfig& config);
// The input normalization a pretrained file implies: a facetrain export what its run used, a Hugging Face or
// timm ViT minus_one_one, torchvision's MobileNetV2 imagenet; "" for kinds without a convention. `source`
// names the file for `why`, which says where the choice came from, for the log.
std::string pretrained_normalization(ModelKind kind, const TensorMap& tensors, const SafetensorsMetadata& metadata,
                                     const std::string& source, std::string* why);
// Replaces data.normalization "auto" by a name: `convention` (what the task's pretrained file implies:
// TrainingTask::pretrained_normalization) when not empty, else "store" for classifiers and the model's own
// for the others. Checks a name the config sets. `why` says where the choice came from, for the log.
void resolve_normalization(proto::RunConfig* config, const std::string& convention, const std::string& convention_why,
                           std::string* why);
// True for kinds that classify images (eval metrics, mine, attention and the report's classifier section).
bool is_classifier(ModelKind kind);

// One module of a model under the name that keys it in checkpoints (a sub-archive) and exports (a prefix
// "<name>." when the model has several modules).
struct NamedModule {
  std::string name;
  std::shared_ptr<torch::nn::Module> module;
};

// The model's modules, freshly built (untrained) for `config` on images shaped like `input`. Throws
// UserError when the input does not fit the model (model_options.h).
std::vector<NamedModule> build_model_modules(const proto::RunConfig& config, const StoreInfo& input);

// Loads every module from `path`: a facetrain checkpoint (each module's sub-archive) or a safetensors file
// (facetrain's own export; for a ViT also Hugging Face and timm names, models/pretrained.h).
// `weights` kEma: the checkpoint's EMA weights (a safetensors file has one set: UserError).
void load_model_modules(ModelKind kind, std::vector<NamedModule>& modules, const std::string& path,
                        ModelWeights weights = ModelWeights::kRaw);

// Saves every module into the sub-archive of its name: the layout load_model_modules reads (checkpoint.h).
void save_model_modules(torch::serialize::OutputArchive& archive, const std::vector<NamedModule>& modules);

// All tensors of the modules for a safetensors export: one module under its own names, several with
// "<name>." before each (generator.*, discriminator.*).
TensorMap model_modules_to_tensors(const std::vector<NamedModule>& modules);

}  // namespace facetrain
