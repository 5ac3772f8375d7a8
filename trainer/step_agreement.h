// The per-step agreement of the training loop: one tiny all-reduce after each optimizer step carries the
// loss, the non-finite flag and the stop request, so every rank decides on all three at the same step
// boundary (the mean loss it logs, stopping on a NaN, checkpointing and exiting on a signal).
#pragma once

#include <cstdint>
#include <string>

#include "comm/communicator.h"

namespace facetrain {

struct StepAgreement {
  double mean_loss = 0;     // the finite losses summed over ranks, divided by the number of ranks
  int nonfinite_ranks = 0;  // ranks whose loss was NaN or infinite (their loss counts as 0 in mean_loss)
  bool stop = false;        // some rank was asked to stop (core/stop_signal.h)

  // On every rank after step `step`: throws std::runtime_error naming the step and how many ranks had a
  // non-finite loss, if any did; the run's last good checkpoint stays in `checkpoint_dir`.
  void check_finite(int64_t step, const std::string& checkpoint_dir) const;
};

// (collective) every rank, once after each optimizer step, with its own loss and stop request: one
// all-reduce of three float64 values [loss sum, non-finite ranks, stop requests]. Every rank gets the same
// answer. Alone (one rank) it is that rank's own values.
StepAgreement agree_on_step(Communicator& comm, double loss, bool stop_requested);

}  // namespace facetrain
