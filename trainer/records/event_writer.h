// EventWriter: TensorBoard event files (events.out.tfevents.*) with scalars and PNG images, as TensorFlow's
// Event/Summary Protobuf records in TFRecord framing. `tensorboard --logdir RUN_DIR` reads them.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace facetrain {

// One events file per EventWriter. A resumed run creates a NEW file in the same run directory (TensorBoard
// merges all files of a directory, ordered by name, i.e. by creation time) and continues the step numbers.
// Not thread-safe: one thread writes. Rank 0 only is the caller's job.
//
// Records are buffered and handed to the OS (write(2), no fsync) every `flush_seconds`, when 4 MB are
// pending, on flush() and on destruction; a kill loses at most that window, and TensorBoard stops at a torn
// last record.
class EventWriter {
 public:
  // Creates run_dir if needed and a new file events.out.tfevents.<unix time>.<host>.<pid>.<n> in it whose
  // first records are file_version "brain.Event:2" and a SessionLog START at step start_step + 1.
  // start_step: the step training (re)starts from — 0 for a fresh run, the checkpoint's step on resume.
  // TensorBoard treats every START after the first as a restart and hides the events of the killed attempt
  // at steps >= start_step + 1, so a resumed run's charts show each step once.
  // Throws UserError when the directory or file cannot be created.
  EventWriter(const std::string& run_dir, int64_t start_step, double flush_seconds = 5.0);
  ~EventWriter();  // flushes; write errors are reported on stderr, never thrown
  EventWriter(const EventWriter&) = delete;
  EventWriter& operator=(const EventWriter&) = delete;

  // One scalar (TensorBoard's "simple_value", shown in the Scalars tab).
  void add_scalar(const std::string& tag, float value, int64_t step);
  // Several scalars of one step in one Event record.
  void add_scalars(const std::vector<std::pair<std::string, double>>& values, int64_t step);
  // An image: hwc holds height*width*channels uint8 in row-major HWC order; channels 1 (gray), 3 (RGB) or
  // 4 (RGBA). Stored PNG-encoded (lossless). Throws std::runtime_error on another channel count.
  void add_image(const std::string& tag, const uint8_t* hwc, int height, int width, int channels, int64_t step);

  // Hands every buffered record to the OS. Throws UserError when the write fails (disk full ...).
  void flush();

  const std::string& path() const { return path_; }

 private:
  void append_event(const std::string& serialized_event);

  std::string path_;
  int fd_ = -1;
  std::string pending_;
  double flush_seconds_;
  std::chrono::steady_clock::time_point last_flush_;
};

}  // namespace facetrain
