// Model weights in and out of files: facetrain checkpoints (the run config travels inside) and safetensors.
// Used by fine-tuning (model.vae.init_from), `facetrain export` and every eval command.
#pragma once

#include <torch/torch.h>

#include <string>

#include "datastore/store.h"
#include "core/config.pb.h"

namespace facetrain {

bool is_safetensors_path(const std::string& path);
// A run directory (or its checkpoints/ folder) stands for its newest valid checkpoint; a file stands for
// itself. Skipped corrupt checkpoints are logged. Throws UserError naming `flag` when nothing is found.
std::string resolve_checkpoint_path(const std::string& path, const std::string& flag);
// The run config stored in a facetrain checkpoint. Throws UserError naming the file.
proto::RunConfig config_from_checkpoint(const std::string& path);
// Loads `module` from a checkpoint's sub-archive `key` ("model", "generator", "discriminator") or, for a
// .safetensors file, from its tensors (facetrain names; strict). Throws UserError naming the file.
void load_module_weights(torch::nn::Module& module, const std::string& path, const std::string& key);
// The input shape a checkpoint's model was trained on (height, width, channels and, for classifiers, the
// number of classes as placeholder class names), enough to rebuild the model without the store.
StoreInfo model_input_from_checkpoint(const std::string& path);

}  // namespace facetrain
