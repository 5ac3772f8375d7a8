// Stragglers: in synchronous data-parallel training every rank's step takes as long as the slowest rank's, so a
// slow rank (a throttled CPU, a slower GPU, a node reading from a busy file system) slows the job without a
// word. Each rank times its own work per step — the step minus the time it waited for the others in the
// gradient sync — and its data wait; every log interval the ranks gather the interval's medians (one small
// collective on the control communicator, not per step). A rank whose own work exceeds the other ranks' median
// by more than logging.straggler_threshold in two consecutive intervals is named in the log, with its host and
// whether its extra time is data wait or compute. The exchange is non-blocking: started at the interval's end,
// finished (and judged) at the next step once it has arrived, so no rank waits for it; rank 0 appends every
// interval's medians to
// RUN_DIR/ranks.jsonl, from which `facetrain doctor RUN_DIR` lists the slowest ranks of the run.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

namespace facetrain {

class Communicator;
class PendingCollective;

class StragglerWatch {
 public:
  // (collective) every rank: gathers the ranks' host names. `records`: the ranks.jsonl rank 0 appends to.
  StragglerWatch(double threshold, Communicator& control, const std::string& host, std::string records);

  ~StragglerWatch();

  // After each step, every rank: the step's seconds, those of its own work (the step less its waits for other
  // ranks) and, of those, the seconds it waited for data. Judges the last interval once its exchange arrived.
  void add_step(double step_seconds, double own_seconds, double data_wait_seconds);
  // (collective) every rank, at the end of each log interval (`step`: its last): starts the exchange of this
  // interval's medians (judging the previous one first if it is still open).
  void end_interval(int64_t step);
  // (collective) every rank, after the last step: judges the interval still open.
  void finish();
  // The ranks named as stragglers by the latest judged interval (the same list on every rank).
  const std::vector<int>& stragglers() const { return named_; }
  // What the watch cost: "straggler watch: 12 log intervals compared, 0.21 ms each, 0.01% of the step time".
  std::string describe_cost() const;

 private:
  double threshold_;
  Communicator& control_;
  std::string records_;
  std::ofstream records_out_;  // rank 0's ranks.jsonl, opened at the first judged interval
  std::vector<std::string> hosts_;
  std::vector<double> own_, data_wait_;
  std::vector<int> slow_intervals_;  // per rank: consecutive intervals over the threshold
  std::vector<int> named_;
  // The open exchange: every rank's row [own work, data wait, steps] of the interval first_..last_.
  torch::Tensor rows_;
  std::unique_ptr<PendingCollective> pending_;
  int64_t first_ = 0, last_ = 0;
  void judge();  // finishes the open exchange, then compares, logs, records
  int64_t intervals_ = 0;
  double seconds_ = 0, step_seconds_ = 0;  // in end_interval; in the steps
};

// `facetrain doctor RUN_DIR`: the slowest ranks of the run from RUN_DIR/ranks.jsonl, one line each (at most
// `count`), with how much slower than the ranks' median and how often they were stragglers; no lines when the
// file is absent or holds one rank.
std::vector<std::string> slowest_ranks(const std::string& records, int count = 3);

}  // namespace facetrain
