// `facetrain export`: writes a checkpoint's model as safetensors so other tools can read it (ViT with timm
// names; DCGAN as generator.* and discriminator.*; VAE with its own names), with the run config as metadata.
#include <torch/torch.h>

#include <cxxopts.hpp>

#include "core/error.h"
#include "core/log.h"
#include "models/safetensors.h"
#include "launcher/commands/commands.h"
#include "core/config.h"
#include "models/model_options.h"
#include "models/checkpoint.h"

namespace facetrain {

int export_command(int argc, char** argv) {
  cxxopts::Options options(argv[0], "Export a checkpoint's model as a safetensors file.");
  options.add_options()
      ("checkpoint", "a checkpoint file, or a run directory (its newest valid checkpoint)", cxxopts::value<std::string>())
      ("output", "safetensors file to write", cxxopts::value<std::string>())
      ("h,help", "show this help");
  cxxopts::ParseResult args;
  try {
    args = options.parse(argc, argv);
  } catch (const cxxopts::exceptions::exception& e) {
    throw UserError(std::string(argv[0]) + ": " + e.what());
  }
  if (args.count("help")) {
    log(options.help());
    return 0;
  }
  FT_USER_CHECK(args.count("checkpoint"), argv[0] << ": --checkpoint FILE is required");
  FT_USER_CHECK(args.count("output"), argv[0] << ": --output FILE.safetensors is required");
  const std::string checkpoint = resolve_checkpoint_path(args["checkpoint"].as<std::string>(), "--checkpoint");
  const std::string output = args["output"].as<std::string>();
  FT_USER_CHECK(is_safetensors_path(output), "--output: " << output << " should end in .safetensors");

  const proto::RunConfig config = config_from_checkpoint(checkpoint);
  const StoreInfo input = model_input_from_checkpoint(checkpoint);
  const std::string kind = model_kind(config);
  TensorMap tensors;
  if (kind == "vit") {
    Vit model(vit_options_from(config, input));
    load_module_weights(*model, checkpoint, "model");
    tensors = module_to_tensors(*model);
  } else if (kind == "vae") {
    Vae model(vae_options_from(config, input));
    load_module_weights(*model, checkpoint, "model");
    tensors = module_to_tensors(*model);
  } else {
    const DcganOptions o = dcgan_options_from(config, input);
    DcganGenerator generator(o);
    DcganDiscriminator discriminator(o);
    load_module_weights(*generator, checkpoint, "generator");
    load_module_weights(*discriminator, checkpoint, "discriminator");
    tensors = module_to_tensors(*generator, "generator.");
    for (auto& [name, t] : module_to_tensors(*discriminator, "discriminator.")) tensors[name] = t;
  }
  write_safetensors(output, tensors, {{"format", "pt"}, {"facetrain.model", kind},
                                      {"facetrain.config", to_text(config)}});
  log("export: " + std::to_string(tensors.size()) + " tensors of the " + kind + " in " + checkpoint + " -> " + output);
  return 0;
}

}  // namespace facetrain
