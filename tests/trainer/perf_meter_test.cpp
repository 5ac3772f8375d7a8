// The perf/* figures (trainer/perf_meter.h) in closed form from given step times: model TFLOP/s, MFU, the
// time budget by phase and its names, intervals from running totals; the peak MFU is measured against; the
// memory peaks with and without the GPU seam (runtime/device_peaks.h); and the out-of-memory line
// (trainer/out_of_memory.h) from a real allocation failure.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstdlib>
#include <map>
#include <string>

#include "runtime/device_peaks.h"
#include "trainer/fault_plan.h"
#include "trainer/out_of_memory.h"
#include "trainer/perf_meter.h"

namespace facetrain {
namespace {

std::map<std::string, double> as_map(const std::vector<std::pair<std::string, double>>& scalars) {
  std::map<std::string, double> out;
  for (const auto& [name, value] : scalars) EXPECT_TRUE(out.emplace(name, value).second) << name << " twice";
  return out;
}

// 10 steps of 0.2 s: 0.02 s data wait, 0.01 copy, 0.12 compute, 0.03 communication, 0.015 optimizer, the rest
// (0.005 s) other.
StepTimes ten_steps() {
  StepTimes t;
  t.data_wait = 0.2;
  t.copy = 0.1;
  t.forward_backward = 1.2;
  t.communication = 0.3;
  t.optimizer = 0.15;
  t.step = 2.0;
  return t;
}

TEST(PerfMeter, FiguresInClosedForm) {
  unsetenv("FACETRAIN_TEST_GPU_MEMORY");
  PerfModel model;
  model.train_flops_per_image = 3e9;  // 3 GFLOP per image and step
  model.images_per_step = 64;
  model.peak = {0.5, "given"};
  const PerfFigures f = perf_figures(model, ten_steps(), 10);
  // 640 images x 3e9 FLOPs in 2 s = 0.96 TFLOP/s, 192% of a 0.5 TFLOP/s peak (nothing caps it: a wrong peak shows).
  EXPECT_DOUBLE_EQ(f.tflops, 0.96);
  EXPECT_DOUBLE_EQ(f.mfu, 0.96 / 0.5);
  EXPECT_DOUBLE_EQ(f.step_seconds, 0.2);
  const std::map<std::string, double> scalars = as_map(perf_scalars(f));
  const std::map<std::string, double> budget{{"perf/data_wait", 0.1},   {"perf/copy", 0.05},
                                             {"perf/compute", 0.6},     {"perf/communication", 0.15},
                                             {"perf/optimizer", 0.075}, {"perf/other", 0.025}};
  double sum = 0;
  for (const auto& [name, fraction] : budget) {
    ASSERT_TRUE(scalars.count(name)) << name;
    EXPECT_NEAR(scalars.at(name), fraction, 1e-12) << name;
    sum += scalars.at(name);
  }
  EXPECT_NEAR(sum, 1.0, 1e-12);
  EXPECT_DOUBLE_EQ(scalars.at("perf/tflops"), 0.96);
  EXPECT_DOUBLE_EQ(scalars.at("perf/mfu"), 1.92);
  EXPECT_DOUBLE_EQ(scalars.at("perf/step_seconds"), 0.2);
  EXPECT_GT(scalars.at("perf/host_peak_mb"), 1.0);            // this test process's resident set
  EXPECT_EQ(scalars.count("perf/gpu_peak_reserved_mb"), 0u);  // a CPU device without the seam: no GPU figures
  EXPECT_EQ(scalars.size(), 3u + budget.size() + 1u);
  // The phase names are StepTimes' own, in the step's order.
  std::vector<std::string> names;
  for (const auto& phase : f.budget) names.push_back(phase.name);
  EXPECT_EQ(names, (std::vector<std::string>{"data_wait", "copy", "compute", "communication", "optimizer", "other"}));
  const std::string line = describe(f, model);
  EXPECT_NE(line.find("0.9600 TFLOP/s (3000.00 MFLOP per image), MFU 192.0% of 0.5000 TFLOP/s (given)"),
            std::string::npos)
      << line;
  EXPECT_NE(line.find("step 200.0 ms: data_wait 10.0%, copy 5.0%, compute 60.0%, communication 15.0%, optimizer "
                      "7.5%, other 2.5%; host peak "),
            std::string::npos)
      << line;
}

TEST(PerfMeter, OtherIsNeverNegativeAndNoStepsGiveZeros) {
  StepTimes t = ten_steps();
  t.step = 1.0;  // the named phases add up to more than the step (clock granularity): other is 0, not negative
  EXPECT_DOUBLE_EQ(t.phases().back().seconds, 0.0);
  const PerfFigures none = perf_figures(PerfModel{}, StepTimes{}, 0);
  EXPECT_DOUBLE_EQ(none.tflops, 0.0);
  EXPECT_DOUBLE_EQ(none.mfu, 0.0);
  EXPECT_TRUE(none.budget.empty());
}

TEST(PerfMeter, IntervalsAreTheStepsSinceTheLastOne) {
  unsetenv("FACETRAIN_TEST_GPU_MEMORY");
  PerfModel model;
  model.train_flops_per_image = 1e9;
  model.images_per_step = 10;
  model.peak = {1.0, "given"};
  PerfMeter meter(model, /*first_step=*/100);  // a resumed run: its first interval counts from step 100
  StepTimes totals;
  totals.forward_backward = 0.5;
  totals.step = 1.0;
  std::vector<std::pair<std::string, double>> scalars;
  meter.append_interval(totals, 110, &scalars);  // 10 steps, 100 images, 1e11 FLOPs in 1 s
  EXPECT_DOUBLE_EQ(as_map(scalars).at("perf/tflops"), 0.1);
  EXPECT_DOUBLE_EQ(as_map(scalars).at("perf/compute"), 0.5);
  totals.forward_backward += 0.4;  // 5 more steps in 0.5 s, 0.4 of it compute: 5e10 FLOPs in 0.5 s
  totals.step += 0.5;
  scalars.clear();
  meter.append_interval(totals, 115, &scalars);
  EXPECT_DOUBLE_EQ(as_map(scalars).at("perf/tflops"), 0.1);
  EXPECT_NEAR(as_map(scalars).at("perf/compute"), 0.8, 1e-12);
  EXPECT_DOUBLE_EQ(as_map(scalars).at("perf/step_seconds"), 0.1);
  EXPECT_EQ(meter.intervals(), 2);
  EXPECT_GT(meter.cost_seconds(), 0.0);
}

TEST(PerfMeter, PeakIsGivenOrTheStartUpMatmul) {
  proto::RunConfig config;
  ProcessContext ctx;
  ctx.matmul.threads = 2;
  ctx.matmul.fp32_gflops = 150;
  MatmulPeak peak = matmul_peak(config, ctx);
  EXPECT_DOUBLE_EQ(peak.tflops, 0.15);
  EXPECT_EQ(peak.source, "fp32 matmul 256^3 on 2 threads at start-up");
  config.mutable_logging()->set_peak_tflops(989);
  peak = matmul_peak(config, ctx);
  EXPECT_DOUBLE_EQ(peak.tflops, 989);
  EXPECT_EQ(peak.source, "logging.peak_tflops");
  config.mutable_logging()->set_peak_tflops(0);
  ctx.matmul = MatmulRates{};  // never measured: MFU stays 0 rather than dividing by nothing
  EXPECT_DOUBLE_EQ(matmul_peak(config, ctx).tflops, 0.0);
}

TEST(DeviceMemory, GpuFiguresThroughTheSeam) {
  unsetenv("FACETRAIN_TEST_GPU_MEMORY");
  const MemoryPeaks host = memory_peaks(torch::kCPU);
  EXPECT_FALSE(host.gpu);
  EXPECT_GT(host.host_mb, 1.0);
  EXPECT_EQ(describe(host).rfind("host peak ", 0), 0u);
  setenv("FACETRAIN_TEST_GPU_MEMORY", "70000,76800,3,81559", 1);
  const MemoryPeaks gpu = memory_peaks(torch::kCPU);
  ASSERT_TRUE(gpu.gpu);
  EXPECT_DOUBLE_EQ(gpu.gpu_allocated_mb, 70000);
  EXPECT_DOUBLE_EQ(gpu.gpu_reserved_mb, 76800);
  EXPECT_EQ(gpu.gpu_alloc_retries, 3);
  EXPECT_EQ(describe_gpu(gpu), "GPU peak 68.36 GB allocated, 75.00 GB reserved of 79.65 GB, 3 allocator retries");
  PerfModel model;
  const auto scalars = as_map(perf_scalars(perf_figures(model, ten_steps(), 10)));
  EXPECT_DOUBLE_EQ(scalars.at("perf/gpu_peak_allocated_mb"), 70000);
  EXPECT_DOUBLE_EQ(scalars.at("perf/gpu_peak_reserved_mb"), 76800);
  EXPECT_DOUBLE_EQ(scalars.at("perf/gpu_alloc_retries"), 3);
  setenv("FACETRAIN_TEST_GPU_MEMORY", "70000;1", 1);
  EXPECT_THROW(memory_peaks(torch::kCPU), std::runtime_error);
  unsetenv("FACETRAIN_TEST_GPU_MEMORY");
}

// The fault the out-of-memory test injects is the CPU allocator's own error, and it reads as one.
TEST(OutOfMemory, AnAllocationFailureBecomesOneLine) {
  unsetenv("FACETRAIN_TEST_GPU_MEMORY");
  FaultPlan plan;
  plan.out_of_memory = FaultAt{true, 1, 3};
  plan.during_step(0, 3, torch::kCPU);  // another rank: nothing
  plan.during_step(1, 2, torch::kCPU);  // another step: nothing
  try {
    plan.during_step(1, 3, torch::kCPU);
    FAIL() << "no allocation failure";
  } catch (const std::exception& e) {
    ASSERT_TRUE(is_out_of_memory(e)) << e.what();
    const std::string line = out_of_memory_message(3, 1, torch::kCPU, 128, 1, memory_peaks(torch::kCPU), e);
    EXPECT_EQ(line.find('\n'), std::string::npos) << line;
    EXPECT_EQ(line.rfind("step 3: out of memory on rank 1 (cpu) with data.batch_size 128 x "
                         "schedule.accumulation_steps 1 per rank (host peak ",
                         0),
              0u)
        << line;
    EXPECT_NE(line.find("). The smallest change that halves a micro-batch: --set data.batch_size=64 --set "
                        "schedule.accumulation_steps=2 (128 images per rank and step as before). The allocator: "),
              std::string::npos)
        << line;
    EXPECT_NE(line.find("can't allocate memory"), std::string::npos) << line;
  }
  EXPECT_FALSE(is_out_of_memory(std::runtime_error("a shape mismatch")));
  EXPECT_TRUE(is_out_of_memory(std::bad_alloc()));
  // Odd batches round up (and say the images per step change); a batch of one has nothing to halve.
  const MemoryPeaks peaks;
  const std::bad_alloc e;
  EXPECT_NE(out_of_memory_message(5, 0, torch::kCPU, 5, 2, peaks, e)
                .find("--set data.batch_size=3 --set schedule.accumulation_steps=4 (12 images per rank and step "
                      "instead of 10)"),
            std::string::npos);
  EXPECT_NE(out_of_memory_message(5, 0, torch::kCPU, 1, 1, peaks, e).find("A micro-batch of one image does not fit"),
            std::string::npos);
}

}  // namespace
}  // namespace facetrain
