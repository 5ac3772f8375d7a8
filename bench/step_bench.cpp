// The training-step benchmark (see step_bench.h).
#include "bench/step_bench.h"

#include <ATen/record_function.h>
#include <sys/resource.h>

#include <algorithm>
#include <sstream>
#include <vector>

#include "comm/communicator.h"
#include "core/host_reads.h"
#include "core/log.h"
#include "core/stopwatch.h"
#include "models/model_spec.h"
#include "runtime/blas_kernels.h"
#include "runtime/setup_agreement.h"
#include "trainer/device_math.h"
#include "trainer/host_memory_cache.h"
#include "trainer/perf_meter.h"
#include "trainer/step_profiler.h"
#include "trainer/task.h"

namespace facetrain {

void run_step_bench(const proto::RunConfig& config, const StoreInfo& info, int steps, int warmup, int perf_every,
                    ProcessContext& ctx, const ProfileWindow& profile, const std::string& profile_dir) {
  const std::string kind = model_spec_of(config).name;
  install_host_memory_cache(int64_t{config.distributed().host_memory_cache_mb()} << 20);
  const std::string device_math = apply_device_math(config.distributed(), ctx.device.is_cuda());  // as a run does
  // Nothing is written: samples and checkpoints belong to runs, not benchmarks.
  const DataParallelOptions parallel = data_parallel_options(config);
  std::string gradient_sync;
  const std::unique_ptr<Communicator> gradient = open_gradient_communicator(config, ctx, &gradient_sync);
  TaskInputs inputs{config, ctx, info, "", parallel, *gradient};
  std::unique_ptr<TrainingTask> task;
  run_setup_on_every_rank(*ctx.comm, [&] {  // every rank's model is good (else: one line, no abort)
    torch::manual_seed(config.data().seed());
    task = make_task(inputs);
  });
  task->broadcast_state();
  log_all(describe(ctx));
  log_all(describe_compute(ctx));  // the BLAS kernels this ran with: OPENBLAS_CORETYPE=Prescott shows "before"
  log(gradient_sync);
  log("device math: " + device_math);

  // Random batches in the range the model's loader would give it.
  const int batch = config.data().batch_size();
  const int accumulation = config.schedule().accumulation_steps();
  torch::manual_seed(1000 + ctx.rank);
  std::vector<Batch> micro(accumulation);
  for (auto& b : micro) {
    const std::vector<int64_t> shape{batch, info.channels, info.height, info.width};
    b.images = model_spec_of(config).is_classifier() ? torch::randn(shape) : torch::rand(shape) * 2 - 1;
    b.labels = torch::randint(static_cast<int64_t>(info.class_names.size()), {batch}, torch::kInt64);
    b.indices = torch::arange(batch, torch::kInt64);
  }

  // The perf/* figures as a run computes them (trainer/perf_meter.h), from this rank's timed steps; every
  // `perf_every` steps inside the timed loop as a run's log interval does (0: never, for their cost side by side).
  PerfMeter perf(
      PerfModel{task->train_flops_per_image(), int64_t{batch} * accumulation, matmul_peak(config, ctx), ctx.device}, 0);
  std::vector<std::pair<std::string, double>> interval_scalars;
  std::vector<double> step_s, fb_ms, comm_ms, opt_ms;
  StepTimes last, timed;
  StepProfiler profiler(profile, profile_dir, *ctx.comm, ctx.device);
  std::string trace;
  for (int i = 0; i < warmup + steps; ++i) {
    StepTimes times;
    profiler.before_step(i + 1);  // steps count from 1, the warm-up included
    ctx.comm->barrier();          // every rank starts the step together: the step time is the slowest rank's
    const auto t = Clock::now();
    {
      RECORD_USER_SCOPE("step " + std::to_string(i + 1));
      std::vector<Batch> on_device = micro;  // the images to the device, as a run's load does
      for (auto& b : on_device) b.images = b.images.to(ctx.device);
      times.copy = seconds_since(t);
      const StepOutput out = task->train_step(on_device, config.optimizer().lr(), i, &times);
      read_to_host_scalar(out.loss);  // a step reads nothing back: this waits for its kernels on a GPU
    }
    times.step = seconds_since(t);
    // The slowest rank's time: each rank fills its slot, a sum gathers them.
    torch::Tensor dt = torch::zeros({ctx.world_size}, torch::kFloat64);
    dt[ctx.rank] = times.step;
    ctx.comm->all_reduce_sum_(dt);
    const std::string written = profiler.after_step(i + 1);
    if (!written.empty()) trace = written;
    if (i < warmup) continue;
    last = times;
    timed.copy += times.copy;
    timed.forward_backward += times.forward_backward;
    timed.communication += times.communication;
    timed.optimizer += times.optimizer;
    timed.step += times.step;
    const int done = i - warmup + 1;
    if (perf_every > 0 && done % perf_every == 0) perf.append_interval(timed, done, &interval_scalars);
    step_s.push_back(dt.max().item<double>());
    fb_ms.push_back(1e3 * times.forward_backward);
    comm_ms.push_back(1e3 * times.communication);
    opt_ms.push_back(1e3 * times.optimizer);
  }
  const std::string written = profiler.finish();
  if (!written.empty()) trace = written;
  const double step = median(step_s);
  const double images_per_s = static_cast<double>(batch) * accumulation * ctx.world_size / step;
  const double gflops = task->train_flops_per_image() * images_per_s / ctx.world_size / 1e9;
  const double matmul = measure_matmul_gflops();
  struct rusage usage {};
  getrusage(RUSAGE_SELF, &usage);
  const PerfFigures figures = perf_figures(perf.model(), timed, steps);

  std::ostringstream s;
  s << "bench step: " << kind << ", " << ctx.world_size << " rank(s) x " << ctx.threads << " thread(s), batch " << batch
    << " x " << accumulation << " per rank: median step " << fixed_decimals(step, 4) << " s (min "
    << fixed_decimals(*std::min_element(step_s.begin(), step_s.end()), 4) << ", max "
    << fixed_decimals(*std::max_element(step_s.begin(), step_s.end()), 4) << ", " << steps << " steps, slowest rank), "
    << fixed_decimals(images_per_s, 1) << " images/s (all ranks)\n"
    << "  rank 0 medians per step (StepTimes' phases): compute " << fixed_decimals(median(fb_ms), 1)
    << " ms, communication " << fixed_decimals(median(comm_ms), 1) << " ms, optimizer "
    << fixed_decimals(median(opt_ms), 1) << " ms; peak memory " << usage.ru_maxrss / 1024 << " MB\n"
    << "  host memory cache (distributed.host_memory_cache_mb " << config.distributed().host_memory_cache_mb()
    << "): " << describe_host_memory_cache() << "\n"
    << "  gradient sync: " << last.buckets_overlapped << " of " << last.buckets
    << " bucket all-reduce(s) started while backward still ran (overlapped)\n";
  s << "  BLAS: " << describe(ctx.blas) << "\n";
  s << "  perf on rank " << ctx.rank << ": " << describe(figures, perf.model()) << "\n";
  if (perf.intervals() > 0) {
    s << "  the perf/* statistics every " << perf_every << " steps took "
      << fixed_decimals(1e6 * perf.cost_seconds() / static_cast<double>(perf.intervals()), 1) << " us each, "
      << fixed_decimals(100 * perf.cost_seconds() / timed.step, 4) << "% of the timed steps\n";
  }
  if (!trace.empty()) s << "  profile: " << trace << " (and the other ranks' beside it; doctor --trace merges them)\n";
  if (gflops > 0) {
    s << "  " << fixed_decimals(gflops, 1) << " GFLOP/s per rank; plain 1024^3 matmul now " << fixed_decimals(matmul, 1)
      << " GFLOP/s (" << fixed_decimals(100 * gflops / matmul, 0) << "%)\n";
  }
  // One key=value line for scripts (tools/bench/compare.sh).
  s << "bench_step kind=" << kind << " ranks=" << ctx.world_size << " threads=" << ctx.threads << " batch=" << batch
    << " accumulation=" << accumulation << " steps=" << steps << " step_s=" << fixed_decimals(step, 4)
    << " images_per_s=" << fixed_decimals(images_per_s, 1) << " gflops=" << fixed_decimals(gflops, 1)
    << " matmul_gflops=" << fixed_decimals(matmul, 1) << " buckets=" << last.buckets
    << " buckets_overlapped=" << last.buckets_overlapped;
  for (const auto& [name, value] : perf_scalars(figures)) {
    s << " " << name.substr(std::string("perf/").size()) << "=" << value;  // 6 significant digits
  }
  s << " blas_core=" << (ctx.blas.core.empty() ? "-" : ctx.blas.core);
  log(s.str());
}

}  // namespace facetrain
