// EventWriter (see event_writer.h): serialises facetrain.tensorboard.Event (TensorFlow's field numbers, see
// tensorboard_event.proto), frames each as a TFRecord and appends it to the file.
#include "trainer/records/event_writer.h"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "core/error.h"
#include "core/log.h"
#include "trainer/records/tensorboard_event.pb.h"
#include "trainer/records/tfrecord.h"

namespace facetrain {
namespace {

constexpr size_t kFlushBytes = 4u << 20;
std::atomic<int> g_file_counter{0};  // distinguishes two writers opened by one process in the same second

double unix_seconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::string host_name() {
  char buf[256] = {0};
  if (gethostname(buf, sizeof(buf) - 1) != 0 || buf[0] == '\0') return "localhost";
  return buf;
}

}  // namespace

EventWriter::EventWriter(const std::string& run_dir, int64_t start_step, double flush_seconds)
    : flush_seconds_(flush_seconds), last_flush_(std::chrono::steady_clock::now()) {
  std::error_code ec;
  std::filesystem::create_directories(run_dir, ec);
  FT_USER_CHECK(!ec, run_dir << ": cannot create the run directory for TensorBoard events: " << ec.message());
  const std::string prefix = (std::filesystem::path(run_dir) / "events.out.tfevents.").string() +
                             std::to_string(static_cast<long long>(std::time(nullptr))) + "." + host_name() + "." +
                             std::to_string(static_cast<long long>(getpid())) + ".";
  for (int attempt = 0; attempt < 1000 && fd_ < 0; ++attempt) {
    path_ = prefix + std::to_string(g_file_counter.fetch_add(1));
    fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0644);
    FT_USER_CHECK(fd_ >= 0 || errno == EEXIST,
                  path_ << ": cannot create TensorBoard events file: " << std::strerror(errno));
  }
  FT_CHECK(fd_ >= 0, "no free events file name with prefix " << prefix);

  tensorboard::Event version;
  version.set_wall_time(unix_seconds());
  version.set_step(0);
  version.set_file_version("brain.Event:2");
  append_event(version.SerializeAsString());

  tensorboard::Event start;
  start.set_wall_time(unix_seconds());
  start.set_step(start_step + 1);
  start.mutable_session_log()->set_status(tensorboard::SessionLog::START);
  append_event(start.SerializeAsString());
  flush();
}

EventWriter::~EventWriter() {
  try {
    flush();
  } catch (const std::exception& e) {
    log_all(std::string("TensorBoard events not fully written: ") + e.what());
  }
  if (fd_ >= 0) ::close(fd_);
}

void EventWriter::add_scalar(const std::string& tag, float value, int64_t step) {
  tensorboard::Event event;
  event.set_wall_time(unix_seconds());
  event.set_step(step);
  auto* v = event.mutable_summary()->add_value();
  v->set_tag(tag);
  v->set_simple_value(value);
  append_event(event.SerializeAsString());
}

void EventWriter::add_scalars(const std::vector<std::pair<std::string, double>>& values, int64_t step) {
  if (values.empty()) return;
  tensorboard::Event event;
  event.set_wall_time(unix_seconds());
  event.set_step(step);
  for (const auto& [tag, value] : values) {
    auto* v = event.mutable_summary()->add_value();
    v->set_tag(tag);
    v->set_simple_value(static_cast<float>(value));
  }
  append_event(event.SerializeAsString());
}

void EventWriter::add_image(const std::string& tag, const uint8_t* hwc, int height, int width, int channels,
                            int64_t step) {
  FT_CHECK(channels == 1 || channels == 3 || channels == 4,
           "TensorBoard image '" << tag << "': " << channels << " channels (1, 3 or 4 supported)");
  FT_CHECK(height > 0 && width > 0 && hwc != nullptr, "TensorBoard image '" << tag << "': empty image");
  // OpenCV encodes BGR(A); the caller gives RGB(A).
  const cv::Mat rgb(height, width, CV_8UC(channels), const_cast<uint8_t*>(hwc));
  cv::Mat bgr;
  if (channels == 3) {
    cv::cvtColor(rgb, bgr, cv::COLOR_RGB2BGR);
  } else if (channels == 4) {
    cv::cvtColor(rgb, bgr, cv::COLOR_RGBA2BGRA);
  } else {
    bgr = rgb;
  }
  std::vector<uint8_t> png;
  FT_CHECK(cv::imencode(".png", bgr, png), "TensorBoard image '" << tag << "': PNG encoding failed");

  tensorboard::Event event;
  event.set_wall_time(unix_seconds());
  event.set_step(step);
  auto* v = event.mutable_summary()->add_value();
  v->set_tag(tag);
  auto* image = v->mutable_image();
  image->set_height(height);
  image->set_width(width);
  image->set_colorspace(channels);  // 1 grayscale, 3 RGB, 4 RGBA: the same numbers as the channel count
  image->set_encoded_image_string(png.data(), png.size());
  append_event(event.SerializeAsString());
}

void EventWriter::append_event(const std::string& serialized_event) {
  append_tfrecord(&pending_, serialized_event);
  const auto now = std::chrono::steady_clock::now();
  if (pending_.size() >= kFlushBytes || std::chrono::duration<double>(now - last_flush_).count() >= flush_seconds_) {
    flush();
  }
}

void EventWriter::flush() {
  size_t done = 0;
  while (done < pending_.size()) {
    const ssize_t n = ::write(fd_, pending_.data() + done, pending_.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int err = errno;
      pending_.erase(0, done);
      FT_USER_CHECK(false, path_ << ": cannot write TensorBoard events: " << std::strerror(err));
    }
    done += static_cast<size_t>(n);
  }
  pending_.clear();
  last_flush_ = std::chrono::steady_clock::now();
}

}  // namespace facetrain
