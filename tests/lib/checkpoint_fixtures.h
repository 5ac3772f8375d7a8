// Checkpoints for tests, written through the format's owner (models/checkpoint.h for the payload,
// models/checkpoint_store.h for the file), never a copy of it: a model's named modules (registry names:
// "model", or "generator" and "discriminator") with the run config and the input shape.
#pragma once

#include <string>
#include <vector>

#include "core/config.pb.h"
#include "datastore/store.h"
#include "models/checkpoint.h"
#include "models/checkpoint_store.h"
#include "models/model_spec.h"

namespace facetrain::testing {

// Writes <directory>/checkpoint-<step>.ckpt and returns its path.
inline std::string write_test_checkpoint(const std::string& directory, const std::vector<NamedModule>& modules,
                                         const proto::RunConfig& config, const StoreInfo& input, int64_t step = 0) {
  TrainingPosition position;
  position.step = step;
  const std::string payload = write_checkpoint_payload(
      [&](torch::serialize::OutputArchive& archive) { save_model_modules(archive, modules); }, position, config, input);
  CheckpointStore store(directory, 3);
  return store.write(step, payload,
                     "{\"step\": " + std::to_string(step) + ", \"model\": \"" + model_spec_of(config).name + "\"}");
}

}  // namespace facetrain::testing
