// The facetrain checkpoint format, in one place: what a checkpoint holds, how its payload is written and read,
// and how a user's path (a file, a run directory) resolves to one. The file framing (header, CRCs, end
// marker, keep-last, newest valid) is checkpoint_store.h; this header owns the payload inside it.
//
// Payload: a torch OutputArchive with
//   "config"                  the run config as Protobuf text (eval and export rebuild the model from it)
//   "model_input"             int64 [height, width, channels, classes] the model was trained on
//   "position.step" / "position.epoch" / "position.batch_in_epoch" / "position.images_in_epoch" /
//   "position.world_size" / "position.schedule_step_images"
//                             where training stood (int64 each; the last three may be absent in older files)
//   "rng.cpu"                 the CPU generator state at the save
//   one sub-archive per module of the model (registry.h: "model", or "generator" and "discriminator"),
//   next to whatever else the training task saves (optimizer states, loss scalers).
// Tests write checkpoints through write_checkpoint_payload(), never a copy of it.
#pragma once

#include <torch/torch.h>

#include <functional>
#include <string>

#include "core/config.pb.h"
#include "core/data_description.h"
#include "models/safetensors.h"

namespace facetrain {

// Where training stands; saved in every checkpoint.
struct TrainingPosition {
  int64_t step = 0;            // optimizer steps done
  int64_t epoch = 0;           // current epoch
  int64_t batch_in_epoch = 0;  // loader batches of `epoch` already consumed (per rank, at world_size ranks)
  // Images of `epoch`'s order consumed by all ranks together: where a resume on any number of ranks goes on.
  // -1 when read from a checkpoint older than this field (then batch_in_epoch at the same world size).
  int64_t images_in_epoch = 0;
  int64_t world_size = 0;  // ranks that trained it (0: not recorded)
  // The images of one step of schedule.warmup_steps: the images per optimizer step of the attempt that started
  // the run, kept across resumes so the warm-up stays as long in images on any number of ranks
  // (trainer/schedule.h). 0 when read from a checkpoint older than this field (then the resuming run's).
  int64_t schedule_step_images = 0;
};

// The payload bytes of a checkpoint. `save_state` writes the model's modules (and optimizer states) into
// the archive; `input` is the shape the model trains on (its class count for classifiers).
std::string write_checkpoint_payload(const std::function<void(torch::serialize::OutputArchive&)>& save_state,
                                     const TrainingPosition& position, const proto::RunConfig& config,
                                     const StoreInfo& input);
// The same in two halves: the archive (cheap when `save_state` writes copies: save_module_copy), then its
// bytes, which may be made on another thread once the archive holds only its own tensors.
std::shared_ptr<torch::serialize::OutputArchive> make_checkpoint_archive(
    const std::function<void(torch::serialize::OutputArchive&)>& save_state, const TrainingPosition& position,
    const proto::RunConfig& config, const StoreInfo& input);
std::string serialize_archive(torch::serialize::OutputArchive& archive);

// Module::save's layout (parameters, buffers, a sub-archive per child) with a CPU copy of every tensor, so the
// archive owns what it holds while training goes on changing the module, and belongs to no device: a
// checkpoint written on a GPU node reads anywhere. `parameter_value`, when given, supplies each parameter's
// value instead (e.g. its EMA shadow; copied too).
void save_module_copy(torch::serialize::OutputArchive& archive, const torch::nn::Module& module,
                      const std::function<torch::Tensor(const torch::Tensor&)>& parameter_value = nullptr);

// Module::save's layout read into the module's own tensors: every parameter and buffer is copied in place,
// keeping its device, dtype, storage and identity (optimizer state, EMA shadows and gradient-bucket hooks
// that point at it stay valid), where Module::load would replace its data. Throws UserError naming `source`
// when an entry is missing or has another shape.
void load_module_in_place(torch::serialize::InputArchive& archive, torch::nn::Module& module,
                          const std::string& source);

// A tensor written by save_module_copy (or any checkpoint entry) as the CPU copy it is on disk.
torch::Tensor cpu_copy(const torch::Tensor& tensor);

// Reads a payload (every tensor onto the CPU): hands the archive to `load_state`, restores the CPU generator, returns
// the position. Throws UserError naming `source` when the payload is not a facetrain checkpoint.
TrainingPosition read_checkpoint_payload(const std::string& payload, const std::string& source,
                                         const std::function<void(torch::serialize::InputArchive&)>& load_state);

bool is_safetensors_path(const std::string& path);

// Which weights of a checkpoint: the trained ones, or their exponential moving average (a run with an `ema`
// section keeps it under "<key>_ema" beside "<key>": trainer/ema.h).
enum class ModelWeights { kRaw, kEma };
// "raw" | "ema"; UserError naming `flag` otherwise.
ModelWeights parse_model_weights(const std::string& value, const std::string& flag);
// The checkpoint key of a module's weights: `key` itself, or "<key>_ema".
std::string weights_key(const std::string& key, ModelWeights weights);
// A run directory (or its checkpoints/ folder) stands for its newest valid checkpoint; a file stands for
// itself. Skipped corrupt checkpoints are logged. Throws UserError naming `flag` when nothing is found.
std::string resolve_checkpoint_path(const std::string& path, const std::string& flag);
// The run config stored in a facetrain checkpoint. Throws UserError naming the file.
proto::RunConfig config_from_checkpoint(const std::string& path);
// Loads `module` from a checkpoint's sub-archive `key` ("model", "generator", "discriminator") or, for a
// .safetensors file, from its tensors (facetrain names, `prefix` before each; strict). Throws UserError
// naming the file.
void load_module_weights(torch::nn::Module& module, const std::string& path, const std::string& key,
                         const std::string& safetensors_prefix = "");
// The input shape a checkpoint's model was trained on (height, width, channels and, for classifiers, the
// number of classes as placeholder class names "class k"), enough to rebuild the model without the store.
// Throws UserError naming the file when it records none (e.g. a .safetensors file).
// A .safetensors file written by `facetrain export` records it too (export_metadata); others throw.
StoreInfo model_input_from_checkpoint(const std::string& path);

// The metadata `facetrain export` writes beside a model's tensors: "facetrain.model" (the kind's name),
// "facetrain.config" (the run config as text), "facetrain.weights" (raw | ema) and "facetrain.input" (the
// checkpoint's model_input as "height width channels classes"), so that eval checks an export against a store
// as it checks a checkpoint. A foreign file has none of them.
SafetensorsMetadata export_metadata(const std::string& model_name, const proto::RunConfig& config,
                                    const StoreInfo& input, ModelWeights weights);
inline constexpr const char* kExportModelKey = "facetrain.model";
inline constexpr const char* kExportInputKey = "facetrain.input";

}  // namespace facetrain
