// The subcommand table (see command_table.h); the commands themselves are in launcher/commands/.
#include "launcher/command_table.h"

#include "launcher/commands/commands.h"

namespace facetrain {

std::vector<Subcommand> all_subcommands() {
  return {
      {"ingest", "turn image folders, CelebA's layout or IDX files into one HDF5 store", ingest_command, {}},
      {"stats", "counts per class and split, class weights, shape, mean and std of a store", stats_command, {}},
      {"synth", "write a procedural face-like data set (tests, demos, scale benchmarks)", synth_command, {}},
      {"train",
       "train a ViT, MobileNetV2 or CNN classifier, DCGAN or perceptual VAE data-parallel (mpirun / srun)",
       {},
       train_command},
      {"eval metrics",
       "loss, accuracy, precision/recall/F1, ROC AUC, confusion matrix, predictions.csv",
       {},
       eval_metrics_command},
      {"eval mine",
       "keep the images a classifier scores above a threshold (list, contact sheet, store)",
       {},
       eval_mine_command},
      {"eval attention", "ViT attention maps (class-token, rollout) laid over the images", {}, eval_attention_command},
      {"eval morph", "VAE latent morphs between images: GIF, MP4, PNG strip", {}, eval_morph_command},
      {"eval samples", "DCGAN sample grids and latent interpolations", {}, eval_samples_command},
      {"eval report", "one self-contained HTML report of a run and its evaluations", {}, eval_report_command},
      {"submit", "render the Slurm batch script for a config (and submit it with --submit)", submit_command, {}},
      {"export", "write a checkpoint's model as safetensors (for other tools)", export_command, {}},
      {"doctor",
       "where a run's ranks diverged (hung or dead rank), from their collective flight records",
       doctor_command,
       {}},
      {"bench loader", "images/s of the sharded loader: raw, normalized, augmented", bench_loader_command, {}},
      {"bench step",
       "median time of one training step of a config's model (random batches; 1 or N ranks)",
       {},
       bench_step_command},
      {"bench allreduce", "gradient-sync bandwidth against plain MPI_Allreduce", {}, bench_allreduce_command},
  };
}

}  // namespace facetrain
