// Subcommands of `facetrain eval` (wired into the binary by launcher/commands.cpp). Each reads a checkpoint
// (or safetensors + --model-config) and a store, runs on one or many MPI ranks (ranks split the images and
// gather the results: every image counted exactly once), and writes plain files into --output (rank 0).
#pragma once

#include "core/process_context.h"

namespace facetrain {

int eval_metrics_command(int argc, char** argv, ProcessContext& ctx);    // metrics.json, predictions.csv, ...
int eval_mine_command(int argc, char** argv, ProcessContext& ctx);       // mined.csv, contact sheet, subset store
int eval_attention_command(int argc, char** argv, ProcessContext& ctx);  // attention maps per image + grid
int eval_morph_command(int argc, char** argv, ProcessContext& ctx);      // latent morph GIF, MP4, PNG strip
int eval_samples_command(int argc, char** argv, ProcessContext& ctx);    // DCGAN sample grids, interpolations
int eval_report_command(int argc, char** argv, ProcessContext& ctx);     // one self-contained HTML report

}  // namespace facetrain
