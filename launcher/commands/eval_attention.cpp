// `facetrain eval attention`: ViT attention maps of chosen store images (eval/attention.h).
#include "core/error.h"
#include "eval/attention.h"
#include "launcher/commands/commands.h"
#include "launcher/commands/flag_groups.h"
#include "launcher/flags.h"
#include "launcher/threads.h"

namespace facetrain {

int eval_attention_command(int argc, char** argv, ProcessContext& ctx) {
  CommandLine cli(argv[0],
                  "ViT attention maps of store images: the last block's class-token attention (heads "
                  "averaged) and attention rollout, overlaid as heat maps.");
  AttentionRequest request;
  cli.bind("method", &request.method, "cls | rollout | both")
      .bind("alpha", &request.alpha, "heat-map opacity in [0, 1]");
  declare_visual_flags(cli, &request.visual,
                       "ViT checkpoint (.ckpt), run directory (newest valid checkpoint) or .safetensors");
  cli.bind("batch-size", &request.batch_size, "images per forward pass per rank");
  if (!cli.parse(argc, argv)) return 0;
  parse_attention_methods(request.method, "--method");
  FT_USER_CHECK(request.alpha >= 0 && request.alpha <= 1, "--alpha must be in [0, 1], got " << request.alpha);
  FT_USER_CHECK(request.batch_size >= 1, "--batch-size must be >= 1, got " << request.batch_size);
  apply_thread_flag(ctx, cli.integer("threads"));
  write_attention_maps(request, ctx);
  return 0;
}

}  // namespace facetrain
