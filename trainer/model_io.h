// Model weights in and out of files: facetrain checkpoints (the run config travels inside) and safetensors.
// Used by fine-tuning (model.vae.init_from), `facetrain export` and every eval command.
#pragma once

#include <torch/torch.h>

#include <string>

#include "trainer/config.pb.h"

namespace facetrain {

bool is_safetensors_path(const std::string& path);
// The run config stored in a facetrain checkpoint. Throws UserError naming the file.
proto::RunConfig config_from_checkpoint(const std::string& path);
// Loads `module` from a checkpoint's sub-archive `key` ("model", "generator", "discriminator") or, for a
// .safetensors file, from its tensors (facetrain names; strict). Throws UserError naming the file.
void load_module_weights(torch::nn::Module& module, const std::string& path, const std::string& key);

}  // namespace facetrain
