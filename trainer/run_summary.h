// The run summary: throughput, where the step time went (StepTimes' phases), model FLOP/s and MFU
// (trainer/perf_meter.h), peak memory over the ranks, the host memory cache, fp16 loss scaling, fine-tuning's
// trainable parameters and checkpoint pauses. RunSummary counts the steps while the loop runs (no collective)
// and logs once after the last one.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "core/config.pb.h"
#include "runtime/process_context.h"
#include "core/stopwatch.h"
#include "trainer/perf_meter.h"
#include "trainer/task.h"
#include "trainer/training_checkpoints.h"

namespace facetrain {

class RunSummary {
 public:
  // Every rank, right before the first step: starts the wall clock. `first_step` is where training (re)starts.
  // config and ctx must outlive this object.
  RunSummary(const proto::RunConfig& config, ProcessContext& ctx, int64_t first_step);

  // The run's running step times, where the loop and the task add each step's split (RunSetup::load_step,
  // TrainingTask::train_step's `times`).
  StepTimes* step_times() { return &times_; }
  // After each optimizer step: its seconds from load to the step agreement (added to step_times()->step), the
  // images it trained (all ranks) and the task's host scalars (the last step's loss scaling goes into the
  // summary).
  void add_step(double seconds, int64_t images, std::vector<std::pair<std::string, double>> host_scalars);
  // After each optimizer step: how many host reads of device values it made (core/host_reads.h), and whether it
  // was a step whose losses the ranks agreed on (a log step, a checkpoint, a stop: those read; the others
  // should not). The summary says both.
  void add_host_reads(int64_t reads, bool agreed_on_losses);

  // (collective) every rank, once after the last step and TrainingCheckpoints::finish(): one all-reduce of
  // the ranks' peak memory, then the summary lines (rank 0 prints; the perf line is rank 0's own). Nothing,
  // and no collective, when this run trained no step (`last_step` == first_step): every rank agrees on that.
  void log(int64_t last_step, const TrainingTask& task, const TrainingCheckpoints& checkpoints,
           const PerfMeter& perf) const;

 private:
  const proto::RunConfig& config_;
  ProcessContext& ctx_;
  int64_t first_step_;
  Clock::time_point start_;
  StepTimes times_;
  double images_ = 0;
  std::vector<std::pair<std::string, double>> last_scalars_;
  struct HostReads {
    int64_t steps = 0;                // steps of this kind
    int64_t reads = 0;                // their reads, summed
    int64_t steps_reading = 0;        // of them, the steps with at least one read
    int64_t most = 0;                 // the most reads in one step
  } reads_between_, reads_agreeing_;  // steps between agreements on the losses, and steps with one
};

}  // namespace facetrain
