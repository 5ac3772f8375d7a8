// A trained model loaded for evaluation: from a facetrain checkpoint (its run config travels inside) or
// from a safetensors file plus a run config (e.g. a downloaded ViT). Checks that the store it will be
// evaluated on fits the model (image size, channels, classes) and names what does not.
#pragma once

#include <string>

#include "datastore/loader.h"
#include "models/dcgan.h"
#include "models/vae.h"
#include "models/vit.h"
#include "core/config.pb.h"

namespace facetrain {

struct LoadedModel {
  std::string kind;                 // "vit" | "dcgan" | "vae"
  std::string source;               // the checkpoint or safetensors path
  proto::RunConfig config;          // the run config the model was trained with
  Normalization normalization = Normalization::kMeanStd;
  Vit vit{nullptr};                 // kind == "vit"
  DcganGenerator generator{nullptr};  // kind == "dcgan"
  DcganDiscriminator discriminator{nullptr};
  Vae vae{nullptr};                 // kind == "vae"
};

// checkpoint: a .ckpt from a run's checkpoints/ folder, a run directory (its newest valid checkpoint), or a
// .safetensors file (then model_config, a run config file, is required). `store` is the store to evaluate
// on; `expected_kind` ("vit", "vae", "dcgan", or "" for any) makes a checkpoint of another kind an error.
// The model is put in eval mode on `device`. Throws UserError naming the file, flag or field.
LoadedModel load_model_for_eval(const std::string& checkpoint, const std::string& model_config,
                                const StoreInfo& store, const std::string& expected_kind, torch::Device device);

}  // namespace facetrain
