// The training loop's agreement between ranks at a step boundary. Every step, whether any rank was asked to
// stop (a host flag: no wait on the device). At a log step, a checkpoint, a stop and an epoch's or the run's
// end, also the losses: each rank reads its last loss and the first step since the previous agreement whose
// loss was not finite from its device in one host read (core/host_reads.h), and one tiny all-reduce gives
// every rank the mean loss it logs and the decision to stop on a NaN, at the same step boundary.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <string>

#include "comm/communicator.h"

namespace facetrain {

struct StepAgreement {
  double mean_loss = 0;     // the finite losses summed over ranks, divided by the number of ranks
  int nonfinite_ranks = 0;  // ranks with a NaN or infinite loss since the last agreement (counted 0 in mean_loss)
  int64_t first_nonfinite_step = -1;  // the earliest such step over the ranks, -1 when no rank knows it
  bool stop = false;                  // some rank was asked to stop (core/stop_signal.h)

  // On every rank after step `step`: throws std::runtime_error naming the first non-finite step (`step` when
  // unknown) and how many ranks had a non-finite loss, if any did; the run's last good checkpoint stays in
  // `checkpoint_dir`.
  void check_finite(int64_t step, const std::string& checkpoint_dir) const;
};

// (collective) every rank, with its own last loss, stop request and first non-finite step since the last
// agreement (-1: none): one all-reduce of three float64 values [loss sum, non-finite ranks, stop requests],
// and one more only when some rank's loss was not finite (the earliest step). Every rank gets the same answer.
// Alone (one rank) it is that rank's own values.
StepAgreement agree_on_step(Communicator& comm, double loss, bool stop_requested, int64_t first_nonfinite_step = -1);

// The first step whose loss was not finite since the last reset(), tracked on the losses' device with a few
// device operations per step and no host read; the loop reads first_step() with the loss where they are agreed.
class NonfiniteLosses {
 public:
  void add(const torch::Tensor& loss, int64_t step);
  // A 0-dim float64 tensor on the losses' device: the step, or -1 when every loss since reset() was finite.
  const torch::Tensor& first_step() const { return first_; }
  void reset();

 private:
  torch::Tensor first_;
};

}  // namespace facetrain
