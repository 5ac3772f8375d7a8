// The profiler window (logging.profile, `train --profile FIRST:LAST`, `bench step --profile`): LibTorch's own
// profiler (the Kineto-based one: CPU operators, and on a GPU the CUDA kernels on their streams) records those
// steps on every rank, and each rank writes RUN_DIR/profile/rank-R.trace.json, a Chrome trace that Perfetto and
// chrome://tracing open. facetrain's phases are named ranges on it ("step N", "data wait", "host-to-device
// copy", "forward", "backward", "gradient sync wait", "optimizer", "checkpoint pause", and each gradient bucket
// from launch to completion on a track of its own). Times are microseconds from one instant common to all
// ranks: the ranks cross barriers at the window's start; ranks on rank 0's host share its clock, the others
// are shifted by their offset at the barrier crossed with the least skew. So the rank traces line up, and
// `facetrain doctor --trace RUN_DIR` merges them into one file with a track per rank. Outside the window no
// profiler runs: the named ranges cost one inactive check each.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <memory>
#include <string>

namespace facetrain {

class Communicator;

// Steps FIRST..LAST (1-based, inclusive); none when first == 0.
struct ProfileWindow {
  int64_t first = 0, last = 0;
  bool active() const { return first > 0; }
  // "FIRST:LAST" or "STEP"; "" is none. Throws UserError naming `field` otherwise.
  static ProfileWindow parse(const std::string& text, const std::string& field);
  std::string describe() const;  // "steps 20-25"
};

class StepProfiler {
 public:
  // `directory`: where rank-R.trace.json goes (created when the window starts). `control`: the launcher's
  // communicator (barriers and one gather, at the window's ends only). `device`: CUDA adds GPU activity.
  StepProfiler(ProfileWindow window, std::string directory, Communicator& control, torch::Device device);
  ~StepProfiler();  // a window still open is closed and its trace discarded
  StepProfiler(const StepProfiler&) = delete;
  StepProfiler& operator=(const StepProfiler&) = delete;

  // (collective at the window's start) every rank, before step `step` runs: opens the window at its first step,
  // or at the first step of a run resumed inside it.
  void before_step(int64_t step);
  // (collective at the window's end) every rank, after step `step`: at the window's last step closes it and
  // writes this rank's trace. Returns the path written, "" otherwise.
  std::string after_step(int64_t step);
  // (collective when the window is open) every rank: the run ends inside the window (a stop, the last step):
  // writes what was recorded. Returns the path written, "" when nothing was open.
  std::string finish();

 private:
  std::string close_and_write();
  ProfileWindow window_;
  std::string directory_;
  Communicator& control_;
  torch::Device device_;
  bool open_ = false;  // the profiler runs
  bool done_ = false;
};

// `facetrain doctor --trace`: every RUN_DIR/profile/rank-R.trace.json (`profile_dir`) in one Chrome trace,
// PROFILE_DIR/merged.trace.json, a process (track group) per rank. Returns its path; throws UserError naming the
// folder when it holds no rank trace, or a file that is not one.
std::string merge_rank_traces(const std::string& profile_dir);

}  // namespace facetrain
