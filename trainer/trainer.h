// The generic data-parallel training loop shared by every model: data, schedule, checkpoints and resume,
// preemption, logs, progress and the run summary. (collective) Every rank calls run_training together.
#pragma once

#include <string>

#include "core/config.pb.h"
#include "core/process_context.h"

namespace facetrain {

struct TrainOptions {
  std::string resume = "none";  // "none" | "auto" (newest valid checkpoint in the run dir, if any) | a path
  bool quiet = false;           // no progress bar / lines (tests)
};

// Returns the process exit code: 0 when training finished, kExitStopped after a preemption checkpoint.
// Throws UserError for bad input and std::runtime_error for a non-finite loss (last good checkpoint kept).
int run_training(const proto::RunConfig& config, ProcessContext& ctx, const TrainOptions& options);

}  // namespace facetrain
