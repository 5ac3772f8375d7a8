// Every subcommand of the facetrain binary, one thin file each in launcher/commands/: the command parses its
// flags through launcher/flags.h (one-line UserErrors naming the flag) and calls the library that does the
// work. Plain commands run in one process; the others run on MPI ranks the launcher started and placed.
// launcher/command_table.cpp lists them with their one-line summaries.
#pragma once

#include "runtime/process_context.h"

namespace facetrain {

// --- data (tools/, datastore/): one process, no MPI ---
// facetrain ingest --source folders|celeba|idx --input DIR --output FILE.h5 [--size N | --height H --width W]
//   [--channels 3|1] [--face-crop] [--label-attribute NAME] [--val-fraction F --test-fraction F --seed N]
//   [--threads N] [--limit N] [--overwrite]
int ingest_command(int argc, char** argv);
// facetrain synth --output FILE --count N [--size 64] [--seed S] [--task smiling|glasses] [--threads N]
//   [--val-fraction F --test-fraction F] [--overwrite]
int synth_command(int argc, char** argv);
// facetrain stats FILE [--json]: counts per class and split, class weights, shape, train mean/std.
int stats_command(int argc, char** argv);

// --- training (trainer/) ---
// facetrain train --config FILE [--set a.b=v ...] [--resume auto|none|PATH] [--threads N]
int train_command(int argc, char** argv, ProcessContext& ctx);
// facetrain export --checkpoint FILE --output FILE.safetensors
int export_command(int argc, char** argv);
// facetrain submit --config FILE (--gpus-per-node G | --cpu --tasks-per-node R) [--nodes N] [...] [--submit]
// Renders slurm/train.sbatch for the config and prints it (or writes FILE); --submit pipes it to sbatch.
int submit_command(int argc, char** argv);

// --- evaluation (eval/): ranks split the images and gather the results; rank 0 writes into --output ---
int eval_metrics_command(int argc, char** argv, ProcessContext& ctx);    // metrics.json, predictions.csv, ...
int eval_mine_command(int argc, char** argv, ProcessContext& ctx);       // mined.csv, contact sheet, subset store
int eval_attention_command(int argc, char** argv, ProcessContext& ctx);  // attention maps per image + grid
int eval_morph_command(int argc, char** argv, ProcessContext& ctx);      // latent morph GIF, MP4, PNG strip
int eval_samples_command(int argc, char** argv, ProcessContext& ctx);    // DCGAN sample grids, interpolations
int eval_report_command(int argc, char** argv, ProcessContext& ctx);     // one self-contained HTML report

// facetrain doctor RUN_DIR: where the ranks diverged, from their collective flight records (one process).
int doctor_command(int argc, char** argv);

// --- benchmarks: figures for the README, never pass/fail ---
// facetrain bench loader FILE: images/s of raw reads, normalized and augmented batches, beside memcpy.
int bench_loader_command(int argc, char** argv);
// facetrain bench step --config FILE [--set a.b=v ...] [--steps N] [--warmup N]: median training step.
int bench_step_command(int argc, char** argv, ProcessContext& ctx);
// facetrain bench allreduce [--min-bytes N] [--max-bytes N] [...]: gradient-sync bandwidth vs MPI_Allreduce.
int bench_allreduce_command(int argc, char** argv, ProcessContext& ctx);

}  // namespace facetrain
