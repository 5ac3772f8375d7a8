// Progress: the training progress display — on a terminal a one-line bar redrawn in place with '\r'
// (epoch, step/total, images/s, loss, ETA); elsewhere (Slurm logs, pipes) a plain line every N seconds.
#pragma once

#include <cstdint>
#include <functional>
#include <iosfwd>
#include <string>
#include <utility>
#include <vector>

namespace facetrain {

// Showing it on rank 0 only is the caller's job (plain lines go through log(), which prints on rank 0 only;
// the bar writes to stdout directly). Not thread-safe.
class Progress {
 public:
  using Extra = std::vector<std::pair<std::string, double>>;
  using Clock = std::function<double()>;  // monotonic seconds

  // total_steps: the step count the run ends at. is_terminal: draw the bar (else plain lines every
  // plain_every_seconds; the first and the last step are always printed). out/clock: for tests — by default
  // stdout (bar) / log() (plain lines) and std::chrono::steady_clock.
  Progress(int64_t total_steps, bool is_terminal, double plain_every_seconds = 30.0, std::ostream* out = nullptr,
           Clock clock = {});

  // Called after each optimizer step; `step` counts completed steps (1 after the first).
  void update(int64_t epoch, int64_t step, double images_per_s, double loss, const Extra& extra = {});
  // Ends the bar's line (terminal) so the next log line starts on a fresh line; no-op for plain lines.
  void finish_line();

  // Seconds left at `step`: the mean time per step since the first update() times the steps left; negative
  // while unknown (before two updates).
  double eta_seconds(int64_t step) const;

  // "epoch 3 | step 1200/5000 (24.0%) | 812.3 images/s | loss 0.4321 | lr 0.001 | ETA 4m05s" — the plain line
  // (eta_seconds < 0 prints "ETA --").
  static std::string format_line(int64_t epoch, int64_t step, int64_t total_steps, double images_per_s, double loss,
                                 double eta_seconds, const Extra& extra = {});
  // "45s", "4m05s", "2h03m09s"; "--" when negative.
  static std::string format_duration(double seconds);

 private:
  void emit_plain(const std::string& line);

  int64_t total_steps_;
  bool is_terminal_;
  double plain_every_seconds_;
  std::ostream* out_;
  Clock clock_;
  bool started_ = false;
  int64_t first_step_ = 0;
  double first_time_ = 0;
  double last_time_ = 0;
  double last_plain_ = -1e300;
  double last_draw_ = -1e300;
  int64_t last_step_ = 0;
  bool bar_open_ = false;
  size_t last_bar_width_ = 0;
};

}  // namespace facetrain
