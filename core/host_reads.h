// Host reads of device values: the one place a training step copies a value computed on its device back to
// the host (a loss, a norm, a flag). On a GPU each such read waits for every kernel queued before it, so the
// host stops feeding the device; a step that never reads keeps the GPU busy while the host queues the next.
// Every read goes through here and is counted, so the contract "no host read inside a step, a few at each log
// interval" is a number a CPU test checks (tests/trainer/e2e/host_reads.sh), whatever device the run is on.
// Values the host made itself (stop flags, timings, label counts) are not device values and need no read.
#pragma once

#include <torch/types.h>

#include <atomic>
#include <cstdint>
#include <vector>

namespace facetrain {

namespace host_reads_detail {
inline std::atomic<int64_t> count{0};
}  // namespace host_reads_detail

// How many host reads this process has made so far.
inline int64_t host_read_count() { return host_reads_detail::count.load(std::memory_order_relaxed); }

// A device tensor's values on the host, as a contiguous CPU tensor: one read (one wait on the device).
inline torch::Tensor read_to_host(const torch::Tensor& values) {
  host_reads_detail::count.fetch_add(1, std::memory_order_relaxed);
  return values.detach().to(torch::kCPU).contiguous();
}

// Several device scalars (0-dim or one-element tensors, any float or integer type) as doubles, in one read:
// they are stacked on the device first.
inline std::vector<double> read_to_host(const std::vector<torch::Tensor>& scalars) {
  if (scalars.empty()) return {};
  std::vector<torch::Tensor> flat;
  flat.reserve(scalars.size());
  for (const auto& s : scalars) flat.push_back(s.detach().reshape({1}).to(torch::kFloat64));
  const torch::Tensor host = read_to_host(torch::cat(flat));
  const double* v = host.data_ptr<double>();
  return std::vector<double>(v, v + host.numel());
}

// One device scalar as a double: one read.
inline double read_to_host_scalar(const torch::Tensor& scalar) { return read_to_host(std::vector{scalar})[0]; }

}  // namespace facetrain
