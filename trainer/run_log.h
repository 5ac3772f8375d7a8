// RunLog: the run's logs on rank 0 — TensorBoard event file and metrics.jsonl in the run directory. On
// other ranks every call is a no-op, so training code can log without rank checks.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace facetrain {

class EventWriter;
class JsonlWriter;

class RunLog {
 public:
  // active: this rank writes (rank 0). Opens a new events file in run_dir (a resumed run adds one) and
  // trims metrics.jsonl to start_step (the step training (re)starts from), so each step appears once.
  RunLog(const std::string& run_dir, int64_t start_step, bool active);
  ~RunLog();
  bool active() const { return active_; }
  const std::string& run_dir() const { return run_dir_; }
  // Several scalars of one step: one metrics.jsonl line and one TensorBoard scalar each.
  void scalars(int64_t step, const std::vector<std::pair<std::string, double>>& values);
  // An HxWxC uint8 RGB/gray image for TensorBoard (PNG).
  void image(const std::string& tag, const uint8_t* pixels, int height, int width, int channels, int64_t step);
  void flush();

 private:
  bool active_;
  std::string run_dir_;
  std::unique_ptr<EventWriter> events_;
  std::unique_ptr<JsonlWriter> jsonl_;
};

}  // namespace facetrain
