// JsonlWriter: metrics.jsonl, one JSON object per line {"step": s, "<tag>": value, ..., "time": unix_seconds},
// the machine-readable twin of the TensorBoard scalars (easy to load with pandas or jq).
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace facetrain {

// Appends to one file; each line is handed to the OS as it is written (a kill loses nothing already written,
// at worst tears the line being written). Not thread-safe; rank 0 only is the caller's job.
class JsonlWriter {
 public:
  // Opens `path` for appending, creating it (and its directory) if needed. start_step: the step training
  // (re)starts from — 0 for a fresh run, the checkpoint's step on resume. Lines an earlier, killed attempt
  // wrote after that point ("step" > start_step) and a torn last line are dropped first (the file is
  // rewritten through a temporary file and rename), so the file reads as one uninterrupted run. A fresh run
  // (start_step 0) in a directory that already has a metrics.jsonl thus starts it anew.
  // Throws UserError when the file cannot be opened or rewritten.
  JsonlWriter(const std::string& path, int64_t start_step);
  ~JsonlWriter();
  JsonlWriter(const JsonlWriter&) = delete;
  JsonlWriter& operator=(const JsonlWriter&) = delete;

  // One line, keys in the given order between "step" and "time". NaN and infinities become null (JSON has
  // no such numbers). Throws UserError when the write fails.
  void write(int64_t step, const std::vector<std::pair<std::string, double>>& values);

  const std::string& path() const { return path_; }

 private:
  std::string path_;
  int fd_ = -1;
};

}  // namespace facetrain
