// RunLog (see run_log.h): TensorBoard events + metrics.jsonl on rank 0, no-ops elsewhere.
#include "trainer/run_log.h"

#include <filesystem>

#include "trainer/records/event_writer.h"
#include "trainer/records/jsonl_writer.h"

namespace facetrain {

RunLog::RunLog(const std::string& run_dir, int64_t start_step, bool active) : active_(active), run_dir_(run_dir) {
  if (!active_) return;
  events_ = std::make_unique<EventWriter>(run_dir, start_step);
  jsonl_ = std::make_unique<JsonlWriter>((std::filesystem::path(run_dir) / "metrics.jsonl").string(), start_step);
}

RunLog::~RunLog() = default;

void RunLog::scalars(int64_t step, const std::vector<std::pair<std::string, double>>& values) {
  if (!active_) return;
  events_->add_scalars(values, step);
  jsonl_->write(step, values);
}

void RunLog::image(const std::string& tag, const uint8_t* pixels, int height, int width, int channels, int64_t step) {
  if (!active_) return;
  events_->add_image(tag, pixels, height, width, channels, step);
}

void RunLog::flush() {
  if (active_) events_->flush();
}

}  // namespace facetrain
