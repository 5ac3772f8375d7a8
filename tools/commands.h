// Subcommands implemented by the tools library (wired into the binary by launcher/commands.cpp):
// data preparation that runs in one process, without MPI.
#pragma once

namespace facetrain {

// facetrain ingest --source folders|celeba|idx --input DIR --output FILE.h5 [--size N | --height H --width W]
//   [--channels 3|1] [--face-crop] [--label-attribute NAME] [--val-fraction F --test-fraction F --seed N]
//   [--threads N] [--limit N] [--overwrite]
// Throws UserError (one line naming the path or flag) for a missing folder, an empty class, an unknown
// attribute, an existing output without --overwrite, or a bad flag. Unreadable images are skipped and listed.
int ingest_command(int argc, char** argv);

// facetrain synth --output FILE --count N [--size 64] [--seed S] [--task smiling|glasses] [--threads N]
//   [--val-fraction F --test-fraction F] [--overwrite]
int synth_command(int argc, char** argv);

// facetrain stats FILE [--json]: counts and percentages per class and split, class weights, image shape,
// per-channel mean/variance/std of the train split.
int stats_command(int argc, char** argv);

}  // namespace facetrain
