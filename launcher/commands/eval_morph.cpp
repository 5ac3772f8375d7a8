// `facetrain eval morph`: latent morphs through chosen store images with a VAE (eval/morph.h).
#include "core/error.h"
#include "eval/gif_writer.h"
#include "eval/morph.h"
#include "launcher/commands/commands.h"
#include "launcher/commands/flag_groups.h"
#include "launcher/flags.h"
#include "launcher/threads.h"

namespace facetrain {

int eval_morph_command(int argc, char** argv, ProcessContext& ctx) {
  MorphRequest request;
  CommandLine cli(argv[0],
                  "Latent morphs with a VAE: encode chosen images, walk the latent space through them in "
                  "a loop, decode, write a GIF, an MP4 and a PNG strip.");
  declare_visual_flags(cli, &request.visual, "VAE checkpoint (.ckpt) or run directory (newest valid checkpoint)");
  cli.bind("frames", &request.frames, "frames per pair of consecutive images")
      .bind("interpolation", &request.interpolation, "slerp | lerp")
      .bind("fps", &request.fps, "frames per second of the GIF and the MP4");
  if (!cli.parse(argc, argv)) return 0;
  FT_USER_CHECK(request.frames >= 1 && request.frames <= kMaxMorphFrames,
                "--frames must be in [1, " << kMaxMorphFrames << "], got " << request.frames);
  parse_interpolation(request.interpolation, "--interpolation");
  gif_delay_centiseconds(request.fps, "--fps");  // a rate a GIF can show
  apply_thread_flag(ctx, cli.integer("threads"));
  write_latent_morph(request, ctx);
  return 0;
}

}  // namespace facetrain
