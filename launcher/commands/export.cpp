// `facetrain export`: writes a checkpoint's model as safetensors so other tools can read it (ViT with timm
// names; DCGAN as generator.* and discriminator.*; VAE with its own names), with the run config as metadata.
#include <torch/torch.h>

#include "core/error.h"
#include "core/log.h"
#include "models/safetensors.h"
#include "launcher/commands/commands.h"
#include "launcher/commands/flag_groups.h"
#include "launcher/flags.h"
#include "core/config.h"
#include "models/model_spec.h"
#include "models/checkpoint.h"

namespace facetrain {

int export_command(int argc, char** argv) {
  CommandLine cli(argv[0], "Export a checkpoint's model as a safetensors file.");
  cli.required("checkpoint", "a checkpoint file, or a run directory (its newest valid checkpoint)")
      .required("output", "safetensors file to write")
      .text("weights", "raw | ema: the trained weights, or their moving average (from a run with an ema section)",
            "raw");
  if (!cli.parse(argc, argv)) return 0;
  const std::string checkpoint = resolve_checkpoint_path(cli.get("checkpoint"), "--checkpoint");
  const std::string output = cli.get("output");
  FT_USER_CHECK(is_safetensors_path(output), "--output: " << output << " should end in .safetensors");

  const proto::RunConfig config = config_from_checkpoint(checkpoint);
  const ModelSpec& spec = model_spec_of(config, checkpoint);
  const StoreInfo input = model_input_from_checkpoint(checkpoint);
  std::vector<NamedModule> modules = build_model_modules(config, input);
  const ModelWeights weights = parse_model_weights(cli.get("weights"), "--weights");
  load_model_modules(spec, modules, checkpoint, weights);
  const TensorMap tensors = model_modules_to_tensors(modules);
  write_safetensors(output, tensors, export_metadata(spec.name, config, input, weights));
  log("export: " + std::to_string(tensors.size()) + " tensors of the " + spec.name + " in " + checkpoint + " -> " +
      output);
  return 0;
}

}  // namespace facetrain
