// `facetrain eval samples`: DCGAN sample grids, interpolations and the class histogram (eval/samples.h).
#include "core/error.h"
#include "eval/samples.h"
#include "launcher/commands/commands.h"
#include "launcher/commands/flag_groups.h"
#include "launcher/flags.h"
#include "launcher/threads.h"
#include "models/checkpoint.h"

namespace facetrain {

int eval_samples_command(int argc, char** argv, ProcessContext& ctx) {
  const char* about =
      "DCGAN sample grid and latent interpolations; with --classifier, the class histogram of the samples as a "
      "trained ViT sees them.";
  CommandLine cli(argv[0], about);
  SamplesRequest r;
  cli.bind_required("checkpoint", &r.checkpoint,
                    "DCGAN: a .ckpt, a run directory (its newest valid checkpoint) or a "
                    ".safetensors file")
      .bind("model-config", &r.model_config, "run config (.pbtxt) of the DCGAN; required with a .safetensors file")
      .bind_required("output", &r.output, "directory for samples.png, interpolations_*.png, class_histogram.json");
  cli.bind("count", &r.count, "samples on the grid")
      .bind("columns", &r.columns, "images per grid row")
      .bind("seed", &r.seed, "seed of the latent vectors")
      .bind("interpolations", &r.interpolations, "rows of the interpolation grids (0: none)")
      .bind("steps", &r.steps, "images per interpolation row, both endpoints included");
  // The optional class histogram: a classifier and its store.
  cli.bind("classifier", &r.classifier, "ViT checkpoint or run directory to classify the samples with")
      .bind("classifier-config", &r.classifier_config,
            "run config of the classifier; required when --classifier is a "
            ".safetensors file")
      .bind("store", &r.store, "the classifier's store (class names, normalization); also fixes the DCGAN's image size")
      .bind("classify-count", &r.classify_count, "samples to classify for the histogram");
  cli.bind("batch", &r.batch, "samples per forward pass on each rank");
  declare_threads_flag(cli);
  if (!cli.parse(argc, argv)) return 0;
  FT_USER_CHECK(r.classifier.empty() || !r.store.empty(),
                "--classifier needs --store FILE (the classifier's store: class names and normalization)");
  FT_USER_CHECK(r.count > 0, "--count must be > 0, got " << r.count);
  FT_USER_CHECK(r.columns > 0, "--columns must be > 0, got " << r.columns);
  FT_USER_CHECK(r.interpolations >= 0, "--interpolations must be >= 0, got " << r.interpolations);
  FT_USER_CHECK(r.interpolations == 0 || r.steps >= 2, "--steps must be >= 2 (both endpoints), got " << r.steps);
  FT_USER_CHECK(r.classifier.empty() || r.classify_count > 0, "--classify-count must be > 0, got " << r.classify_count);
  FT_USER_CHECK(r.batch > 0, "--batch must be > 0, got " << r.batch);
  FT_USER_CHECK(!r.store.empty() || !is_safetensors_path(r.checkpoint),
                "--checkpoint " << r.checkpoint << ": a safetensors file does not record the image size; pass --store "
                                << "FILE as well");
  r.checkpoint_name = "--checkpoint";
  r.classifier_name = "--classifier";
  r.store_name = "--store";
  apply_thread_flag(ctx, cli.integer("threads"));
  write_dcgan_samples(r, ctx);
  return 0;
}

}  // namespace facetrain
