// FaultPlan (fault_plan.h): the stall, the SIGKILL, the slow rank, the out-of-memory error and the stop signal of
// the reliability tests, and the NaN loss.
#include "trainer/fault_plan.h"

#include <chrono>
#include <csignal>
#include <limits>
#include <string>
#include <thread>

#include <torch/torch.h>

#include "core/log.h"

namespace facetrain {

void FaultPlan::before_step(int rank, int64_t step) const {
  if (stall.hits(rank, step)) {
    log_all("fault injection: rank " + std::to_string(rank) + " stalls before step " + std::to_string(step));
    for (;;) std::this_thread::sleep_for(std::chrono::seconds(60));
  }
  if (kill.hits(rank, step)) {
    log_all("fault injection: rank " + std::to_string(rank) + " dies (SIGKILL) before step " + std::to_string(step));
    std::raise(SIGKILL);
  }
}

void FaultPlan::during_step(int rank, int64_t step, const c10::Device& device) const {
  if (out_of_memory.hits(rank, step)) {
    log_all("fault injection: rank " + std::to_string(rank) + " allocates 1 EiB in step " + std::to_string(step));
    (void)torch::empty({int64_t{1} << 60}, torch::TensorOptions().dtype(torch::kUInt8).device(device));
  }
  if (!slow.armed || slow.rank != rank || step < slow.step) return;
  if (step == slow.step)
    log_all("fault injection: rank " + std::to_string(rank) + " is slow from step " + std::to_string(step) + " on");
  std::this_thread::sleep_for(std::chrono::duration<double>(kSlowStepSeconds));
}

void FaultPlan::after_step(int rank, int64_t step) const {
  if (signal.hits(rank, step)) std::raise(SIGUSR1);
}

torch::Tensor FaultPlan::reported_loss(int rank, int64_t step, const torch::Tensor& loss) const {
  if (!nan_loss.hits(rank, step)) return loss;
  log_all("fault injection: rank " + std::to_string(rank) + " reports a NaN loss at step " + std::to_string(step));
  return loss * std::numeric_limits<float>::quiet_NaN();
}

}  // namespace facetrain
