// `facetrain eval samples`: DCGAN sample grids, interpolations and the class histogram (eval/samples.h).
#include "eval/samples.h"
#include "launcher/commands/commands.h"
#include "launcher/commands/flag_groups.h"
#include "launcher/flags.h"
#include "launcher/threads.h"

namespace facetrain {

int eval_samples_command(int argc, char** argv, ProcessContext& ctx) {
  CommandLine cli(argv[0], "DCGAN sample grid and latent interpolations; with --classifier, the class histogram of "
                           "the samples as a trained ViT sees them.");
  SamplesRequest r;
  cli.bind_required("checkpoint", &r.checkpoint, "DCGAN: a .ckpt, a run directory (its newest valid checkpoint) or a "
                                                 ".safetensors file")
      .bind("model-config", &r.model_config, "run config (.pbtxt) of the DCGAN; required with a .safetensors file")
      .bind_required("output", &r.output, "directory for samples.png, interpolations_*.png, class_histogram.json");
  cli.bind("count", &r.count, "samples on the grid").bind("columns", &r.columns, "images per grid row")
      .bind("seed", &r.seed, "seed of the latent vectors")
      .bind("interpolations", &r.interpolations, "rows of the interpolation grids (0: none)")
      .bind("steps", &r.steps, "images per interpolation row, both endpoints included");
  // The optional class histogram: a classifier and its store.
  cli.bind("classifier", &r.classifier, "ViT checkpoint or run directory to classify the samples with")
      .bind("classifier-config", &r.classifier_config, "run config of the classifier; required when --classifier is a "
                                                       ".safetensors file")
      .bind("store", &r.store, "the classifier's store (class names, normalization); also fixes the DCGAN's image size")
      .bind("classify-count", &r.classify_count, "samples to classify for the histogram");
  cli.bind("batch", &r.batch, "samples per forward pass on each rank");
  declare_threads_flag(cli);
  if (!cli.parse(argc, argv)) return 0;
  apply_thread_flag(ctx, cli.integer("threads"));
  write_dcgan_samples(r, ctx);
  return 0;
}

}  // namespace facetrain
