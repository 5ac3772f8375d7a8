// Model FLOP/s, MFU, the step's time budget and peak memory (see perf_meter.h).
#include "trainer/perf_meter.h"

#include "core/log.h"
#include "core/stopwatch.h"

namespace facetrain {

MatmulPeak matmul_peak(const proto::RunConfig& config, const ProcessContext& ctx) {
  MatmulPeak peak;
  if (config.logging().peak_tflops() > 0) {
    peak.tflops = config.logging().peak_tflops();
    peak.source = "logging.peak_tflops";
  } else if (ctx.device.is_cuda()) {
    peak.tflops = measure_gpu_matmul_tflops(ctx.device);
    peak.source = "fp32 matmul 4096^3 on " + ctx.device.str() + " at start-up";
  } else if (ctx.matmul.threads > 0) {
    peak.tflops = ctx.matmul.fp32_gflops / 1e3;
    peak.source = "fp32 matmul " + std::to_string(MatmulRates::kMatmulSize) + "^3 on " +
                  std::to_string(ctx.matmul.threads) + " thread" + (ctx.matmul.threads == 1 ? "" : "s") +
                  " at start-up";
  } else {
    peak.source = "not measured";  // no start-up rates (a test's ProcessContext): MFU stays 0
  }
  return peak;
}

PerfFigures perf_figures(const PerfModel& model, const StepTimes& span, int64_t steps) {
  PerfFigures f;
  f.steps = steps;
  f.memory = memory_peaks(model.device);
  if (steps <= 0 || span.step <= 0) return f;
  f.step_seconds = span.step / static_cast<double>(steps);
  const double images = static_cast<double>(model.images_per_step) * static_cast<double>(steps);
  f.tflops = model.train_flops_per_image * images / span.step / 1e12;
  f.mfu = model.peak.tflops > 0 ? f.tflops / model.peak.tflops : 0;
  for (const auto& phase : span.phases()) f.budget.push_back({phase.name, phase.seconds / span.step});
  return f;
}

std::vector<std::pair<std::string, double>> perf_scalars(const PerfFigures& f) {
  std::vector<std::pair<std::string, double>> out{
      {"perf/tflops", f.tflops}, {"perf/mfu", f.mfu}, {"perf/step_seconds", f.step_seconds}};
  for (const auto& phase : f.budget) out.emplace_back(std::string("perf/") + phase.name, phase.seconds);
  out.emplace_back("perf/host_peak_mb", f.memory.host_mb);
  if (f.memory.gpu) {
    out.emplace_back("perf/gpu_peak_allocated_mb", f.memory.gpu_allocated_mb);
    out.emplace_back("perf/gpu_peak_reserved_mb", f.memory.gpu_reserved_mb);
    out.emplace_back("perf/gpu_alloc_retries", static_cast<double>(f.memory.gpu_alloc_retries));
  }
  return out;
}

std::string describe(const PerfFigures& f, const PerfModel& model) {
  std::string out = fixed_decimals(f.tflops, 4) + " TFLOP/s (" + fixed_decimals(model.train_flops_per_image / 1e6, 2) +
                    " MFLOP per image), MFU " + fixed_decimals(100 * f.mfu, 1) + "% of " +
                    fixed_decimals(model.peak.tflops, 4) + " TFLOP/s (" + model.peak.source + "); step " +
                    fixed_decimals(1e3 * f.step_seconds, 1) + " ms:";
  const char* separator = " ";
  for (const auto& phase : f.budget) {
    out += separator + std::string(phase.name) + " " + fixed_decimals(100 * phase.seconds, 1) + "%";
    separator = ", ";
  }
  return out + "; " + describe(f.memory);
}

void PerfMeter::append_interval(const StepTimes& totals, int64_t step,
                                std::vector<std::pair<std::string, double>>* scalars) {
  const auto t = Clock::now();
  const PerfFigures f = perf_figures(model_, totals.since(last_totals_), step - last_step_);
  for (auto& s : perf_scalars(f)) scalars->push_back(std::move(s));
  last_totals_ = totals;
  last_step_ = step;
  cost_seconds_ += seconds_since(t);
  ++intervals_;
}

}  // namespace facetrain
