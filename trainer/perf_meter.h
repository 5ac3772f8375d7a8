// How close a rank's training steps come to its device, as torchtitan logs it: achieved model FLOP/s, model
// FLOPs utilisation (MFU) of the device's matmul peak, the step's time budget by phase (StepTimes::phases)
// and peak memory (runtime/device_peaks.h). The perf/* scalars every log interval, the run summary's perf
// line and `facetrain bench step` all come from perf_figures(), under the names perf_scalars() gives them.
// Per rank and local: no collective and no device synchronisation (it reads the step times the loop measures
// anyway, getrusage and the GPU allocator's host-side counters).
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "core/config.pb.h"
#include "runtime/device_peaks.h"
#include "runtime/process_context.h"
#include "trainer/task.h"

namespace facetrain {

// What MFU is measured against.
struct MatmulPeak {
  double tflops = 0;   // dense TFLOP/s of the device
  std::string source;  // "logging.peak_tflops", "fp32 matmul 256^3 on 2 threads at start-up", ...
};
// logging.peak_tflops when given (> 0), else measured on ctx.device: on a CPU the fp32 matmul rate the rank
// measured at start-up with its threads (ctx.matmul), on a GPU an fp32 matmul there now (runtime/device_peaks.h;
// TF32 as distributed.tf32 set it: apply_device_math runs first).
MatmulPeak matmul_peak(const proto::RunConfig& config, const ProcessContext& ctx);

// What the figures are made from: the task's FLOPs, this rank's images per step, the peak and the device.
struct PerfModel {
  double train_flops_per_image = 0;  // TrainingTask::train_flops_per_image()
  int64_t images_per_step = 0;       // this rank's: data.batch_size x schedule.accumulation_steps
  MatmulPeak peak;
  torch::Device device = torch::kCPU;
};

// A span of steps on one rank.
struct PerfFigures {
  int64_t steps = 0;
  double step_seconds = 0;               // the mean step
  double tflops = 0;                     // model TFLOP/s: FLOPs per image x images / the steps' seconds
  double mfu = 0;                        // tflops / peak, a fraction (0 when the peak is unknown)
  std::vector<StepTimes::Phase> budget;  // each phase's fraction of the steps' time; they sum to 1
  MemoryPeaks memory;                    // peaks so far (the process's, not the span's)
};
// `span` holds the times of `steps` steps (StepTimes::since for an interval). Reads the memory peaks now.
PerfFigures perf_figures(const PerfModel& model, const StepTimes& span, int64_t steps);

// perf/tflops, perf/mfu, perf/step_seconds, perf/<phase> for each phase (fractions), perf/host_peak_mb and,
// with GPU figures, perf/gpu_peak_allocated_mb, perf/gpu_peak_reserved_mb, perf/gpu_alloc_retries.
std::vector<std::pair<std::string, double>> perf_scalars(const PerfFigures& figures);

// "0.052 TFLOP/s, MFU 34.7% of 0.150 TFLOP/s (fp32 matmul ...); step 41.2 ms: data_wait 1.0%, copy 0.0%,
// compute 80.1%, communication 10.2%, optimizer 7.3%, other 1.4%; host peak 812 MB"
std::string describe(const PerfFigures& figures, const PerfModel& model);

// The loop's side (every rank): perf/* scalars every log interval from the run's running StepTimes.
class PerfMeter {
 public:
  // Right before the first step; `first_step` is where training (re)starts.
  PerfMeter(PerfModel model, int64_t first_step) : model_(std::move(model)), last_step_(first_step) {}
  const PerfModel& model() const { return model_; }
  // At a log point: appends the perf/* scalars of the steps since the previous one (`totals` are the run's
  // running times, `step` the last step done) to `scalars`, and times itself (cost_seconds).
  void append_interval(const StepTimes& totals, int64_t step, std::vector<std::pair<std::string, double>>* scalars);
  // Seconds spent in append_interval so far, and in how many calls: the statistics' own cost, for the summary.
  double cost_seconds() const { return cost_seconds_; }
  int64_t intervals() const { return intervals_; }

 private:
  PerfModel model_;
  int64_t last_step_;
  StepTimes last_totals_;
  double cost_seconds_ = 0;
  int64_t intervals_ = 0;
};

}  // namespace facetrain
