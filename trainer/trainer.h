// The generic data-parallel training loop shared by every model: set up, resume, epochs and steps, stop,
// summary (trainer.cpp). The parts live in their own units: run_setup.h, training_checkpoints.h,
// step_agreement.h, run_summary.h, fault_plan.h. (collective) Every rank calls run_training together.
#pragma once

#include <string>

#include "core/config.pb.h"
#include "runtime/process_context.h"
#include "trainer/fault_plan.h"

namespace facetrain {

struct TrainOptions {
  std::string resume = "none";         // "none" | "auto" (newest valid checkpoint in the run dir, if any) | a path
  std::string resume_name = "resume";  // how errors name `resume` (the launcher passes its flag)
  bool quiet = false;                  // no progress bar / lines (tests)
  FaultPlan faults;                    // the reliability tests' injected faults; none by default
};

// Returns the process exit code: 0 when training finished, kExitStopped after a preemption checkpoint.
// Throws UserError for bad input and std::runtime_error for a non-finite loss (last good checkpoint kept).
int run_training(const proto::RunConfig& config, ProcessContext& ctx, const TrainOptions& options);

}  // namespace facetrain
