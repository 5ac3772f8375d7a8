// The model registry: one ModelSpec per model kind, all in one table (model_spec.cpp), answering every
// question generic code asks about a model — its name in the config, what it is (classifier, generator,
// autoencoder), its input convention, how to build it, how foreign weights load into it. Callers then ask the
// built modules for capabilities (models/capabilities.h), never for kinds.
//
// Adding a model: its files in models/ (the network implementing its capability), its message and `model`
// oneof case in core/config.proto, one entry in model_spec.cpp's table and one line in models/CMakeLists.txt.
// A classifier then trains, evaluates and exports with no other change; a generator or an autoencoder also
// needs its training recipe (trainer/task.h). tests/models/model_spec_test.cpp fails for a oneof case
// without a spec.
#pragma once

#include <torch/torch.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/config.pb.h"
#include "core/data_description.h"
#include "models/capabilities.h"
#include "models/checkpoint.h"
#include "models/safetensors.h"

namespace facetrain {

// What a model is, which decides what it trains with and what eval can do with it.
enum class ModelRole {
  kClassifier,   // ImageClassifier: cross-entropy training, eval metrics / mine, the classifier of eval samples
  kGenerator,    // ImageGenerator: eval samples
  kAutoencoder,  // ImageAutoencoder: eval morph
};
const char* model_role_name(ModelRole role);  // "classifier" | "generator" | "autoencoder"

// One module of a model under the name that keys it in checkpoints (a sub-archive) and exports (a prefix
// "<name>." when the model has several modules).
struct NamedModule {
  std::string name;
  std::shared_ptr<torch::nn::Module> module;
};

struct ModelSpec {
  std::string name;     // the `model` oneof field in the run config ("vit"); also the name in logs,
                        // checkpoint metadata and exports
  int config_case = 0;  // the oneof case (proto::ModelConfig::KindCase)
  ModelRole role = ModelRole::kClassifier;
  std::string description;  // one line, for --help and errors
  // The pixel scaling the model is built for. Classifiers take the store's mean/std by default and any other
  // scaling through data.normalization; generative models need theirs (tanh outputs).
  Normalization input = Normalization::kMeanStd;
  std::string main_module = "model";  // the module that offers the role's capability
  // A convolutional network: its weights and images can be channels_last (distributed.memory_format,
  // models/memory_format.h). The ViT's one patch convolution does not make it one.
  bool convolutional = false;
  // The modules, freshly built (untrained) for `config` on images shaped like `input`. Throws UserError when
  // the input does not fit the model.
  std::function<std::vector<NamedModule>(const proto::RunConfig& config, const StoreInfo& input)> build;
  // Loads a safetensors file of foreign names (Hugging Face, timm, torchvision) into the main module; the
  // report lists what was loaded, made fresh (a head of another size) and unused. Null: facetrain's own names
  // only (a facetrain export).
  std::function<void(torch::nn::Module& module, const TensorMap& tensors, LoadReport* report,
                     const std::string& source)>
      load_foreign;
  // Checks the model's config section before anything runs (a bad field is one UserError naming `source`
  // and the field), so `train` and `submit` stop at once; null when building checks all there is.
  std::function<void(const proto::RunConfig& config, const std::string& source)> check_config;
  // The input normalization a foreign file implies ("" for none) and why, for data.normalization "auto".
  std::function<std::string(const TensorMap& tensors, const std::string& source, std::string* why)> foreign_convention;

  bool is_classifier() const { return role == ModelRole::kClassifier; }
};

// Every model kind, in the config's oneof order.
const std::vector<ModelSpec>& model_specs();
// The spec a run config selects. Throws UserError naming `source` when the config sets no model.
const ModelSpec& model_spec_of(const proto::RunConfig& config, const std::string& source = "the run config");
// The spec named `name` ("vit"), nullptr for none.
const ModelSpec* find_model_spec(const std::string& name);

// The module of `modules` that offers `Capability` for this spec (its main module), nullptr when the model
// does not offer it (a DCGAN is no classifier, though its discriminator has the shape of one).
template <typename Capability>
Capability* model_capability(const ModelSpec& spec, const std::vector<NamedModule>& modules) {
  for (const auto& m : modules) {
    if (m.name == spec.main_module) return dynamic_cast<Capability*>(m.module.get());
  }
  return nullptr;
}

// Checks the model section of a loaded run config (its spec's check_config). UserError naming `source`.
void check_model_config(const proto::RunConfig& config, const std::string& source);

// The options every classifier's config message has (VitConfig, MobileNetV2Config, CnnConfig: read by field
// name, so a new classifier message only needs fields of these names).
struct ClassifierSettings {
  bool class_weights = false;  // model.<name>.class_weights
  double label_smoothing = 0;  // model.<name>.label_smoothing
  std::string pretrained;      // model.<name>.pretrained ("" when the message has no such field)
};
ClassifierSettings classifier_settings(const proto::RunConfig& config);

// The input normalization of a run: data.normalization for classifiers ("auto": "store"; train resolves
// "auto" first: resolve_normalization), the model's own for the generative ones (UserError naming
// data.normalization when a run sets another).
Normalization run_normalization(const proto::RunConfig& config);
// The input normalization a pretrained file implies: a facetrain export what its run used, a foreign file its
// spec's convention (a Hugging Face or timm ViT minus_one_one, torchvision's MobileNetV2 imagenet); "" for
// none. `source` names the file for `why`, which says where the choice came from, for the log.
std::string pretrained_normalization(const ModelSpec& spec, const TensorMap& tensors,
                                     const SafetensorsMetadata& metadata, const std::string& source, std::string* why);
// Replaces data.normalization "auto" by a name: `convention` (what the task's pretrained file implies:
// TrainingTask::pretrained_normalization) when not empty, else "store" for classifiers and the model's own
// for the others. Checks a name the config sets. `why` says where the choice came from, for the log.
void resolve_normalization(proto::RunConfig* config, const std::string& convention, const std::string& convention_why,
                           std::string* why);

// The model's modules, freshly built (untrained) for `config` on images shaped like `input`.
std::vector<NamedModule> build_model_modules(const proto::RunConfig& config, const StoreInfo& input);

// Loads every module from `path`: a facetrain checkpoint (each module's sub-archive) or a safetensors file
// (facetrain's own export, or foreign names through the spec's load_foreign). Every tensor the model has
// must come from the file: a head of another size or a missing tensor is one UserError naming the file, what
// it has and what was expected (nothing is initialised at random). `weights` kEma: the checkpoint's EMA
// weights (a safetensors file has one set: UserError).
void load_model_modules(const ModelSpec& spec, std::vector<NamedModule>& modules, const std::string& path,
                        ModelWeights weights = ModelWeights::kRaw);

// Saves every module into the sub-archive of its name: the layout load_model_modules reads (checkpoint.h).
void save_model_modules(torch::serialize::OutputArchive& archive, const std::vector<NamedModule>& modules);

// All tensors of the modules for a safetensors export: one module under its own names, several with
// "<name>." before each (generator.*, discriminator.*).
TensorMap model_modules_to_tensors(const std::vector<NamedModule>& modules);

}  // namespace facetrain
