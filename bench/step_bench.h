// The time of one training step of a config's model — the trainer's own step (forward, backward with the
// overlapped gradient sync, optimizer) on random in-memory batches, so the figure is the model and the
// communication, not the disk. The measurement behind `facetrain bench step`; run it on 1 and N ranks for
// weak scaling (the Python references beside it live in tools/bench/python/).
#pragma once

#include <string>

#include "core/config.pb.h"
#include "runtime/process_context.h"
#include "datastore/store.h"
#include "trainer/step_profiler.h"

namespace facetrain {

// (collective) every rank, after the command's checks: builds the task for `config` on images shaped like
// `input`, agrees on the setup, times `warmup` + `steps` steps (the slowest rank's) and logs (rank 0) the
// medians, the split of the step, memory, GFLOP/s beside a plain matmul, rank 0's perf figures under a run's
// perf/* names (trainer/perf_meter.h) and one key=value line for scripts. Every `perf_every` timed steps the
// perf statistics are computed inside the loop as a run's log interval does (0: never). `profile`: steps (from
// 1, warm-up included) LibTorch's profiler records into `profile_dir`/rank-R.trace.json (trainer/step_profiler.h);
// none by default.
void run_step_bench(const proto::RunConfig& config, const StoreInfo& input, int steps, int warmup, int perf_every,
                    ProcessContext& ctx, const ProfileWindow& profile = {}, const std::string& profile_dir = "profile");

}  // namespace facetrain
