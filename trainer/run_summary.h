// The run summary: throughput, where the step time went, peak memory, the host memory cache, fp16 loss
// scaling, fine-tuning's trainable parameters, checkpoint pauses, and the achieved GFLOP/s beside a plain
// matmul. RunSummary counts the steps while the loop runs (no collective) and logs once after the last one.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "core/config.pb.h"
#include "runtime/process_context.h"
#include "core/stopwatch.h"
#include "datastore/loader.h"
#include "trainer/task.h"
#include "trainer/training_checkpoints.h"

namespace facetrain {

class RunSummary {
 public:
  // Every rank, right before the first step: starts the wall clock. `first_step` is where training (re)starts;
  // the loader's data wait is counted from now. config and ctx must outlive this object.
  RunSummary(const proto::RunConfig& config, ProcessContext& ctx, int64_t first_step, const ShardLoader& loader);

  // Where the task adds each step's time split (TrainingTask::train_step's `times`).
  StepTimes* step_times() { return &times_; }
  // After each optimizer step: its seconds from load to the optimizer step, the images it trained (all
  // ranks) and the task's scalars (the last step's loss scaling goes into the summary).
  void add_step(double seconds, int64_t images, std::vector<std::pair<std::string, double>> scalars);

  // (collective) every rank, once after the last step and TrainingCheckpoints::finish(): one all-reduce of
  // the peak memory, then the summary lines (rank 0 prints). Nothing, and no collective, when this run
  // trained no step (`last_step` == first_step): every rank agrees on that.
  void log(int64_t last_step, const ShardLoader& loader, const TrainingTask& task,
           const TrainingCheckpoints& checkpoints) const;

 private:
  const proto::RunConfig& config_;
  ProcessContext& ctx_;
  int64_t first_step_;
  double loader_wait_at_start_;
  Clock::time_point start_;
  StepTimes times_;
  double step_seconds_ = 0;
  double images_ = 0;
  std::vector<std::pair<std::string, double>> last_scalars_;
};

}  // namespace facetrain
