// RunSummary (run_summary.h): the run's closing lines, the perf line among them (perf_meter.h).
#include "trainer/run_summary.h"

#include <torch/torch.h>

#include <algorithm>
#include <sstream>

#include "comm/communicator.h"
#include "core/log.h"
#include "trainer/host_memory_cache.h"

namespace facetrain {

RunSummary::RunSummary(const proto::RunConfig& config, ProcessContext& ctx, int64_t first_step)
    : config_(config), ctx_(ctx), first_step_(first_step), start_(Clock::now()) {}

void RunSummary::add_step(double seconds, int64_t images, std::vector<std::pair<std::string, double>> host_scalars) {
  times_.step += seconds;
  images_ += static_cast<double>(images);
  last_scalars_ = std::move(host_scalars);
}

void RunSummary::add_host_reads(int64_t reads, bool agreed_on_losses) {
  HostReads& r = agreed_on_losses ? reads_agreeing_ : reads_between_;
  ++r.steps;
  r.reads += reads;
  r.steps_reading += reads > 0 ? 1 : 0;
  r.most = std::max(r.most, reads);
}

namespace {

// "none in the 9 steps between", "1 in each of the 3 steps", "2 in 1 of the 9 steps (at most 2 in one)".
std::string describe_reads(int64_t steps, int64_t reads, int64_t steps_reading, int64_t most) {
  const std::string of = " the " + std::to_string(steps) + " step" + (steps == 1 ? "" : "s");
  if (reads == 0) return "none in" + of;
  if (steps_reading == steps && most * steps == reads) return std::to_string(most) + " in each of" + of;
  return std::to_string(reads) + " in " + std::to_string(steps_reading) + " of" + of + " (at most " +
         std::to_string(most) + " in one)";
}

}  // namespace

void RunSummary::log(int64_t last_step, const TrainingTask& task, const TrainingCheckpoints& checkpoints,
                     const PerfMeter& perf) const {
  const double wall = seconds_since(start_);
  const double steps = static_cast<double>(last_step - first_step_);
  if (steps <= 0) return;
  const PerfFigures figures = perf_figures(perf.model(), times_, last_step - first_step_);
  // Every rank's host peak and GPU reserved peak, each in its rank's slot: one sum gathers them.
  torch::Tensor peaks = torch::zeros({2, ctx_.world_size}, torch::kFloat64);
  peaks[0][ctx_.rank] = figures.memory.host_mb;
  peaks[1][ctx_.rank] = figures.memory.gpu_reserved_mb;
  ctx_.comm->all_reduce_sum_(peaks);  // (collective) every rank
  const double images_per_s = images_ / times_.step;
  std::ostringstream s;
  s << "summary: " << fixed_decimals(steps, 0) << " steps in " << fixed_decimals(wall, 1) << " s, "
    << fixed_decimals(images_per_s, 1) << " images/s (all ranks); per step on rank " << ctx_.rank << ":";
  const char* separator = " ";
  for (const auto& phase : times_.phases()) {
    s << separator << phase.name << " " << fixed_decimals(1e3 * phase.seconds / steps, 1) << " ms";
    separator = ", ";
  }
  facetrain::log(s.str());
  facetrain::log("summary: perf on rank " + std::to_string(ctx_.rank) + ": " + describe(figures, perf.model()));
  if (perf.intervals() > 0) {
    facetrain::log("summary: the perf/* statistics took " +
                   fixed_decimals(1e6 * perf.cost_seconds() / static_cast<double>(perf.intervals()), 1) +
                   " us per log interval, " + fixed_decimals(100 * perf.cost_seconds() / times_.step, 4) +
                   "% of the steps' time");
  }
  const auto host = peaks[0], reserved = peaks[1];
  const int64_t max_rank = host.argmax().item<int64_t>();
  std::string memory = "summary: peak memory: host " + fixed_decimals(figures.memory.host_mb, 0) + " MB on rank " +
                       std::to_string(ctx_.rank) + ", " + fixed_decimals(host[max_rank].item<double>(), 0) +
                       " MB at most (rank " + std::to_string(max_rank) + "), " +
                       fixed_decimals(host.mean().item<double>(), 0) + " MB mean over ranks";
  if (figures.memory.gpu) {
    const int64_t max_gpu = reserved.argmax().item<int64_t>();
    memory += "; " + describe_gpu(figures.memory) + " on rank " + std::to_string(ctx_.rank) + ", " +
              fixed_decimals(reserved[max_gpu].item<double>() / 1024, 2) + " GB reserved at most (rank " +
              std::to_string(max_gpu) + ")";
  }
  facetrain::log(memory);
  facetrain::log("summary: host memory cache (distributed.host_memory_cache_mb " +
                 std::to_string(config_.distributed().host_memory_cache_mb()) + ") on rank " +
                 std::to_string(ctx_.rank) + ": " + describe_host_memory_cache());
  // fp16's loss scaling: where the scale ended and how many steps an overflow skipped (also in TensorBoard).
  std::string scaling;
  for (const auto& [name, value] : last_scalars_) {
    if (name.find("loss_scale") != std::string::npos || name.find("skipped_steps") != std::string::npos) {
      scaling += (scaling.empty() ? "" : ", ") + name + " " + fixed_decimals(value, 0);
    }
  }
  if (!scaling.empty()) facetrain::log("summary: " + config_.distributed().precision() + " loss scaling: " + scaling);
  if (!task.trainable_summary().empty()) facetrain::log("summary: " + task.trainable_summary());
  // The steps' host reads of device values (core/host_reads.h): each one a wait for the device on a GPU.
  std::string reads = "summary: host reads of device values on rank " + std::to_string(ctx_.rank) + ": ";
  if (reads_between_.steps > 0) {
    reads +=
        describe_reads(reads_between_.steps, reads_between_.reads, reads_between_.steps_reading, reads_between_.most) +
        " between log steps";
  }
  if (reads_agreeing_.steps > 0) {
    reads += std::string(reads_between_.steps > 0 ? "; " : "") +
             describe_reads(reads_agreeing_.steps, reads_agreeing_.reads, reads_agreeing_.steps_reading,
                            reads_agreeing_.most) +
             " that logged, checkpointed or stopped";
  }
  facetrain::log(reads);
  const std::vector<double>& pauses = checkpoints.pause_seconds();
  if (ctx_.rank == 0 && !pauses.empty()) {
    std::string line = "summary: " + std::to_string(pauses.size()) + " checkpoints; training paused " +
                       fixed_decimals(1e3 * median(pauses), 1) + " ms each (median)";
    if (!checkpoints.background_write_seconds().empty()) {
      line += ", the files written in the background in " +
              fixed_decimals(1e3 * median(checkpoints.background_write_seconds()), 1) + " ms each";
    }
    facetrain::log(line);
  }
}

}  // namespace facetrain
