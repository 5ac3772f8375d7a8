// The measurement behind `facetrain bench allreduce` (see allreduce_bench.h): bandwidth of the gradient-sync
// path (GradientBuckets: autograd hooks, bucket views, pre-division, MPI_Iallreduce, wait) against a plain
// blocking MPI_Allreduce of the same bytes, plus (--overlap) how much of the communication a real backward
// pass hides, with and without hook progress.
#include "bench/allreduce_bench.h"

#include <torch/cuda.h>
#include <torch/torch.h>

#include <algorithm>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "comm/communicator.h"
#include "comm/gradient_sync.h"
#include "core/error.h"
#include "core/log.h"
#include "core/stopwatch.h"

namespace facetrain {
namespace {

// (collective) every rank: element-wise max over ranks (a collective's time is its slowest rank's).
void max_over_ranks(std::vector<double>& v) {
  torch::Tensor t = torch::from_blob(v.data(), {static_cast<int64_t>(v.size())}, torch::kFloat64);
  plain_mpi_all_reduce_(t, ReduceOp::kMax);
}

// Synthetic parameters: `bytes` of float32 cut into tensors of at most `param_bytes` (real models are
// made of many small tensors; ViT's largest is ~0.6 MB).
std::vector<torch::Tensor> make_parameters(int64_t bytes, int64_t param_bytes) {
  std::vector<torch::Tensor> params;
  int64_t remaining = bytes / 4;
  const int64_t chunk = std::max<int64_t>(1, param_bytes / 4);
  while (remaining > 0) {
    const int64_t n = std::min(remaining, chunk);
    params.push_back(torch::full({n}, 0.5f).requires_grad_(true));
    remaining -= n;
  }
  return params;
}

// A graph whose backward only hands every parameter its gradient: d(sum p)/dp = 1, accumulated by autograd
// into .grad (one pass over the bytes, the same work a real backward does at the leaves).
torch::Tensor sum_of(const std::vector<torch::Tensor>& params) {
  torch::Tensor loss = params[0].sum();
  for (size_t i = 1; i < params.size(); ++i) loss = loss + params[i].sum();
  return loss;
}

void set_zero_grads(const std::vector<torch::Tensor>& params) {
  for (const auto& p : params) p.mutable_grad() = torch::zeros_like(p);
}

std::string fmt(const char* format, double v) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), format, v);
  return buf;
}

// (collective) every rank: the size sweep.
void run_sweep(Communicator& comm, const std::vector<int64_t>& sizes, int fixed_reps, int64_t param_bytes,
               int64_t cap_bytes) {
  const int n = comm.size();
  const double bus_factor = n > 1 ? 2.0 * (n - 1) / n : 0.0;
  log("bytes       |  MPI_Allreduce: ms   algbw  busbw  |  gradient sync: ms   algbw  busbw  | ratio | "
      "backward alone ms");
  for (const int64_t bytes : sizes) {
    const int64_t count = bytes / 4;
    torch::Tensor plain = torch::ones({count});
    std::vector<torch::Tensor> params = make_parameters(bytes, param_bytes);
    std::vector<torch::Tensor> reference = make_parameters(bytes, param_bytes);
    set_zero_grads(reference);
    GradientBuckets buckets(comm, params, cap_bytes, "bench");

    auto time_plain = [&] {
      comm.barrier();
      const auto t = Clock::now();
      plain_mpi_all_reduce_(plain, ReduceOp::kSum);
      return seconds_since(t);
    };
    auto time_sync = [&] {
      torch::Tensor loss = sum_of(params);  // forward, not timed
      comm.barrier();
      const auto t = Clock::now();
      loss.backward();
      buckets.finalize();
      return seconds_since(t);
    };
    auto time_backward = [&] {
      torch::Tensor loss = sum_of(reference);
      comm.barrier();
      const auto t = Clock::now();
      loss.backward();
      return seconds_since(t);
    };

    // Warm-up (the first synced backward also moves .grad into the buckets), then the repetition count.
    time_plain();
    time_sync();
    time_backward();
    std::vector<double> estimate{time_plain() + time_sync() + time_backward()};
    max_over_ranks(estimate);
    const int reps = fixed_reps > 0 ? fixed_reps : std::clamp(static_cast<int>(1.5 / estimate[0]), 7, 301);

    // Interleaved, so every arm sees the same machine noise.
    std::vector<double> t_plain(reps), t_sync(reps), t_backward(reps);
    for (int r = 0; r < reps; ++r) {
      t_plain[r] = time_plain();
      t_sync[r] = time_sync();
      t_backward[r] = time_backward();
    }
    max_over_ranks(t_plain);
    max_over_ranks(t_sync);
    max_over_ranks(t_backward);
    const double mpi = median(t_plain);
    const double backward = median(t_backward);
    // The cost of gradient sync is what it adds to a backward pass that accumulates the same gradients.
    const double sync = median(t_sync) - backward;
    const double b = static_cast<double>(count * 4);
    const double algbw_mpi = b / mpi / 1e9, algbw_sync = b / sync / 1e9;
    char size_text[32];
    std::snprintf(size_text, sizeof(size_text), "%10lld", static_cast<long long>(bytes));
    log(std::string(size_text) + "  |  " + fmt("%16.3f", 1e3 * mpi) + fmt(" %7.2f", algbw_mpi) +
        fmt(" %6.2f", algbw_mpi * bus_factor) + "  |  " + fmt("%16.3f", 1e3 * sync) + fmt(" %7.2f", algbw_sync) +
        fmt(" %6.2f", algbw_sync * bus_factor) + "  | " + fmt("%4.0f%%", 100.0 * mpi / sync) + " | " +
        fmt("%8.3f", 1e3 * backward) + "   (" + std::to_string(reps) + " reps, " +
        std::to_string(buckets.bucket_count()) + " bucket(s))");
  }
}

// (collective) every rank: a 4-layer MLP's training step, bucketed at `cap_bytes`; how long finalize()
// still waits after backward (exposed communication) with and without MPI progress from the hooks. The two
// settings alternate step by step so both see the same machine noise.
void run_overlap(Communicator& comm, int64_t cap_bytes, int steps) {
  torch::manual_seed(1);
  torch::nn::Sequential mlp(torch::nn::Linear(1024, 1024), torch::nn::ReLU(), torch::nn::Linear(1024, 1024),
                            torch::nn::ReLU(), torch::nn::Linear(1024, 1024), torch::nn::ReLU(),
                            torch::nn::Linear(1024, 1024));
  GradientBuckets buckets(comm, mlp->parameters(), cap_bytes, "overlap");
  torch::Tensor x = torch::randn({128, 1024});
  int64_t param_bytes = 0;
  for (const auto& p : mlp->parameters()) param_bytes += p.numel() * 4;
  log("overlap: 4 x Linear(1024, 1024), batch 128, " + format_bytes(param_bytes) + " of gradients in " +
      std::to_string(buckets.bucket_count()) + " buckets; per step, medians of " + std::to_string(steps) +
      " steps per setting (alternating)");
  std::vector<double> t_backward[2], t_finalize[2], t_total[2];
  for (int s = -2; s < 2 * steps; ++s) {
    const int setting = (s + 2) % 2;  // 0: progress in hooks on, 1: off
    buckets.set_progress_in_hooks(setting == 0);
    mlp->zero_grad();
    torch::Tensor loss = mlp->forward(x).square().mean();
    comm.barrier();
    auto t = Clock::now();
    loss.backward();
    const double backward = seconds_since(t);
    t = Clock::now();
    buckets.finalize();
    const double finalize = seconds_since(t);
    if (s >= 0) {
      t_backward[setting].push_back(backward);
      t_finalize[setting].push_back(finalize);
      t_total[setting].push_back(backward + finalize);
    }
  }
  for (int setting = 0; setting < 2; ++setting) {
    max_over_ranks(t_backward[setting]);
    max_over_ranks(t_finalize[setting]);
    max_over_ranks(t_total[setting]);
    log(std::string("  progress in hooks ") + (setting == 0 ? "on:  " : "off: ") + "backward (launching buckets) " +
        fmt("%.2f", 1e3 * median(t_backward[setting])) + " ms, finalize (exposed communication) " +
        fmt("%.2f", 1e3 * median(t_finalize[setting])) + " ms, backward + finalize " +
        fmt("%.2f", 1e3 * median(t_total[setting])) + " ms");
  }
}

// --backend nccl: nccl-tests' all_reduce_perf through facetrain's NCCL communicator (its side stream, its
// watchdog): float32 sums on every rank's GPU, each repetition timed from the launch until the device has
// finished it (the host waits: torch::cuda::synchronize), the slowest rank's median per size.
void run_nccl_sweep(Communicator& control, int device_index, const std::vector<int64_t>& sizes, int reps) {
  std::unique_ptr<Communicator> nccl = make_nccl_communicator(device_index, /*timeout_seconds=*/300);
  const int n = nccl->size();
  const double bus_factor = n > 1 ? 2.0 * (n - 1) / n : 1.0;
  log("bytes       count        time (ms)   algbw (GB/s)   busbw (GB/s)   [NCCL, float32 sum, " + std::to_string(n) +
      " GPUs]");
  for (const int64_t bytes : sizes) {
    torch::Tensor t = torch::ones({bytes / 4}, torch::TensorOptions().device(torch::kCUDA, device_index));
    const int count = reps > 0 ? reps : (bytes < 64'000'000 ? 50 : 20);
    std::vector<double> times;
    for (int i = -5; i < count; ++i) {  // 5 warm-up repetitions
      control.barrier("bench allreduce: before a repetition");
      const auto start = Clock::now();
      nccl->all_reduce_sum_(t, "bench allreduce of " + format_bytes(bytes));
      torch::cuda::synchronize(device_index);
      if (i >= 0) times.push_back(seconds_since(start));
    }
    std::vector<double> slowest{median(times)};
    max_over_ranks(slowest);
    const double algbw = static_cast<double>(bytes) / slowest[0] / 1e9;
    char row[128];
    std::snprintf(row, sizeof(row), "%-11lld %-12lld %10.3f   %12.2f   %12.2f", static_cast<long long>(bytes),
                  static_cast<long long>(bytes / 4), 1e3 * slowest[0], algbw, algbw * bus_factor);
    log(row);
  }
}

}  // namespace

void run_allreduce_bench(const AllreduceBenchOptions& o) {
  auto comm = make_mpi_communicator();
  set_log_rank(comm->rank(), comm->size());
  const int64_t cap_bytes = static_cast<int64_t>(o.bucket_cap_mb * 1e6);
  std::vector<int64_t> sizes;
  for (int64_t s = o.min_bytes; s < o.max_bytes; s *= o.factor) sizes.push_back(s);
  sizes.push_back(o.max_bytes);
  if (o.backend == "nccl") {
    run_nccl_sweep(*comm, o.device_index, sizes, o.reps);
    return;
  }
  log("bench allreduce: " + std::to_string(comm->size()) + " ranks x " + std::to_string(o.threads) +
      " thread(s), float32, bucket cap " + format_bytes(cap_bytes) +
      ", parameters of <= " + format_bytes(o.param_bytes) +
      "; times are the slowest rank's, medians over repetitions; "
      "gradient sync = (backward + finalize) - (backward alone); GB/s");
  run_sweep(*comm, sizes, o.reps, o.param_bytes, cap_bytes);
  if (o.overlap_steps > 0) run_overlap(*comm, 4'000'000, o.overlap_steps);
}

}  // namespace facetrain
