// Fault injection for the reliability tests: a rank that stalls or dies before a step, is slow in every step, runs
// out of memory inside one, or sends itself the stop signal right after one. The caller injects the plan through
// TrainOptions (the launcher fills it from FACETRAIN_FAULT_*, launcher/commands/train.cpp; a unit test sets it
// directly); empty, it does nothing.
#pragma once

#include <c10/core/Device.h>
#include <torch/types.h>

#include <cstdint>

namespace facetrain {

// One fault: on rank `rank` at step `step`, when armed.
struct FaultAt {
  bool armed = false;
  int rank = 0;
  int64_t step = 0;
  bool hits(int at_rank, int64_t at_step) const { return armed && rank == at_rank && step == at_step; }
};

struct FaultPlan {
  // The watchdog tests (tests/slurm, the flight recorder's): the rank stops making progress before the step,
  // as a rank stuck in I/O would, or dies there by SIGKILL, as one the OOM killer takes.
  FaultAt stall;
  FaultAt kill;
  // The stop tests (tests/trainer/e2e): the rank sends itself SIGUSR1 right after the step, so a stop lands on
  // an exact step (the last of an epoch, the final one) instead of wherever a signal from outside arrives.
  FaultAt signal;
  // The straggler test: from step `step` on, every step of the rank takes kSlowStepSeconds more compute (a
  // throttled CPU, a slower GPU), inside the step's own time.
  FaultAt slow;
  static constexpr double kSlowStepSeconds = 0.1;
  // The out-of-memory test (tests/trainer/e2e/out_of_memory.sh): inside the step, the rank asks its device's
  // allocator for more memory than any machine has, as a batch too large for it would.
  FaultAt out_of_memory;
  // The non-finite loss test (tests/trainer/e2e/host_reads.sh): the rank's loss of the step is NaN, as after a
  // diverging update, without touching the weights.
  FaultAt nan_loss;

  // Before step `step` (1-based: the step about to run), on every rank: stalls for ever or dies when planned.
  void before_step(int rank, int64_t step) const;
  // Inside step `step`, after its data arrived, on every rank: sleeps when the rank is slowed from there on; throws
  // the allocator's out-of-memory error of `device` when planned.
  void during_step(int rank, int64_t step, const c10::Device& device) const;
  // Right after step `step` has run, on every rank: raises SIGUSR1 when planned.
  void after_step(int rank, int64_t step) const;
  // The loss step `step` reports on `rank`: `loss`, or NaN when planned.
  torch::Tensor reported_loss(int rank, int64_t step, const torch::Tensor& loss) const;
};

}  // namespace facetrain
