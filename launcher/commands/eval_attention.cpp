// `facetrain eval attention`: ViT attention maps of chosen store images (eval/attention.h).
#include "eval/attention.h"
#include "launcher/commands/commands.h"
#include "launcher/commands/flag_groups.h"
#include "launcher/flags.h"
#include "launcher/threads.h"

namespace facetrain {

int eval_attention_command(int argc, char** argv, ProcessContext& ctx) {
  CommandLine cli(argv[0], "ViT attention maps of store images: the last block's class-token attention (heads "
                           "averaged) and attention rollout, overlaid as heat maps.");
  AttentionRequest request;
  cli.bind("method", &request.method, "cls | rollout | both").bind("alpha", &request.alpha, "heat-map opacity in [0, 1]");
  declare_visual_flags(cli, &request.visual, "ViT checkpoint (.ckpt), run directory (newest valid checkpoint) or .safetensors");
  cli.bind("batch-size", &request.batch_size, "images per forward pass per rank");
  if (!cli.parse(argc, argv)) return 0;
  apply_thread_flag(ctx, cli.integer("threads"));
  write_attention_maps(request, ctx);
  return 0;
}

}  // namespace facetrain
