// RunSummary (run_summary.h). Its GFLOP/s line stands beside the matmul yardstick (runtime/blas_kernels.h).
#include "trainer/run_summary.h"

#include <sys/resource.h>

#include <torch/torch.h>

#include <sstream>

#include "comm/communicator.h"
#include "core/log.h"
#include "runtime/blas_kernels.h"
#include "trainer/host_memory_cache.h"

namespace facetrain {

RunSummary::RunSummary(const proto::RunConfig& config, ProcessContext& ctx, int64_t first_step,
                       const ShardLoader& loader)
    : config_(config), ctx_(ctx), first_step_(first_step), start_(Clock::now()) {
  loader_wait_at_start_ = loader.wait_seconds();
}

void RunSummary::add_step(double seconds, int64_t images, std::vector<std::pair<std::string, double>> scalars) {
  step_seconds_ += seconds;
  images_ += static_cast<double>(images);
  last_scalars_ = std::move(scalars);
}

void RunSummary::log(int64_t last_step, const ShardLoader& loader, const TrainingTask& task,
                     const TrainingCheckpoints& checkpoints) const {
  const double wall = seconds_since(start_);
  const double steps = static_cast<double>(last_step - first_step_);
  if (steps <= 0) return;
  const double data_wait = loader.wait_seconds() - loader_wait_at_start_;
  struct rusage usage {};
  getrusage(RUSAGE_SELF, &usage);
  double peak_mb = usage.ru_maxrss / 1024.0;
  torch::Tensor peak = torch::tensor({peak_mb}, torch::kFloat64);
  ctx_.comm->all_reduce_sum_(peak);  // (collective) every rank
  const double images_per_s = images_ / step_seconds_;
  std::ostringstream s;
  s << "summary: " << fixed_decimals(steps, 0) << " steps in " << fixed_decimals(wall, 1) << " s, "
    << fixed_decimals(images_per_s, 1) << " images/s (all ranks); per step: data wait "
    << fixed_decimals(1e3 * data_wait / steps, 1) << " ms, forward+backward "
    << fixed_decimals(1e3 * times_.forward_backward / steps, 1) << " ms, exposed communication "
    << fixed_decimals(1e3 * times_.communication / steps, 1) << " ms, optimizer "
    << fixed_decimals(1e3 * times_.optimizer / steps, 1) << " ms; peak memory " << fixed_decimals(peak_mb, 0)
    << " MB on rank " << ctx_.rank << " (mean over ranks "
    << fixed_decimals(peak[0].item<double>() / ctx_.world_size, 0) << " MB)";
  facetrain::log(s.str());
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
  if (task.train_flops_per_image() > 0) {
    const double matmul = measure_matmul_gflops();
    const double achieved = task.train_flops_per_image() * images_per_s / ctx_.world_size / 1e9;
    facetrain::log("summary: " + fixed_decimals(achieved, 1) +
                   " GFLOP/s per rank in training steps; plain 1024^3 "
                   "matmul now: " +
                   fixed_decimals(matmul, 1) + " GFLOP/s (" + fixed_decimals(100 * achieved / matmul, 0) + "%) with " +
                   describe(ctx_.blas));
  }
}

}  // namespace facetrain
