// Progress (see progress.h): ETA from the mean step time since the first update, the bar redrawn at most
// ten times a second so a fast loop does not flood the terminal.
#include "trainer/records/progress.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <sstream>

#include "core/log.h"

namespace facetrain {
namespace {

constexpr double kRedrawSeconds = 0.1;
constexpr int kBarCells = 20;

std::string number(double v, int digits) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.*f", digits, v);
  return buf;
}

// Loss-like values: 4 significant digits, scientific when tiny or huge.
std::string value(double v) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.4g", v);
  return buf;
}

}  // namespace

Progress::Progress(int64_t total_steps, bool is_terminal, double plain_every_seconds, std::ostream* out, Clock clock)
    : total_steps_(total_steps),
      is_terminal_(is_terminal),
      plain_every_seconds_(plain_every_seconds),
      out_(out),
      clock_(std::move(clock)) {
  if (!clock_) {
    clock_ = [] { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); };
  }
}

std::string Progress::format_duration(double seconds) {
  if (!(seconds >= 0)) return "--";
  const long long s = std::llround(seconds);
  char buf[64];
  if (s < 60) {
    std::snprintf(buf, sizeof(buf), "%llds", s);
  } else if (s < 3600) {
    std::snprintf(buf, sizeof(buf), "%lldm%02llds", s / 60, s % 60);
  } else {
    std::snprintf(buf, sizeof(buf), "%lldh%02lldm%02llds", s / 3600, (s / 60) % 60, s % 60);
  }
  return buf;
}

std::string Progress::format_line(int64_t epoch, int64_t step, int64_t total_steps, double images_per_s, double loss,
                                  double eta_seconds, const Extra& extra) {
  std::ostringstream line;
  const double percent = total_steps > 0 ? 100.0 * static_cast<double>(step) / static_cast<double>(total_steps) : 0.0;
  line << "epoch " << epoch << " | step " << step << "/" << total_steps << " (" << number(percent, 1) << "%) | "
       << number(images_per_s, 1) << " images/s | loss " << value(loss);
  for (const auto& [name, v] : extra) line << " | " << name << " " << value(v);
  line << " | ETA " << format_duration(eta_seconds);
  return line.str();
}

double Progress::eta_seconds(int64_t step) const {
  if (!started_ || step <= first_step_ || last_time_ <= first_time_) return -1;
  const double per_step = (last_time_ - first_time_) / static_cast<double>(last_step_ - first_step_);
  return per_step * static_cast<double>(std::max<int64_t>(0, total_steps_ - step));
}

void Progress::update(int64_t epoch, int64_t step, double images_per_s, double loss, const Extra& extra) {
  const double now = clock_();
  if (!started_) {
    started_ = true;
    first_step_ = step;
    first_time_ = now;
  }
  last_step_ = step;
  last_time_ = now;
  const bool last = step >= total_steps_;
  if (!is_terminal_) {
    if (step == first_step_ || last || now - last_plain_ >= plain_every_seconds_) {
      last_plain_ = now;
      emit_plain(format_line(epoch, step, total_steps_, images_per_s, loss, eta_seconds(step), extra));
    }
    return;
  }
  if (!last && now - last_draw_ < kRedrawSeconds) return;
  last_draw_ = now;
  const double fraction = total_steps_ > 0 ? std::clamp(static_cast<double>(step) / total_steps_, 0.0, 1.0) : 0.0;
  const int filled = static_cast<int>(fraction * kBarCells);
  std::string bar = "epoch " + std::to_string(epoch) + " [" + std::string(filled, '#') +
                    std::string(kBarCells - filled, '.') + "] " + std::to_string(step) + "/" +
                    std::to_string(total_steps_) + " | " + number(images_per_s, 1) + " img/s | loss " + value(loss);
  for (const auto& [name, v] : extra) bar += " | " + name + " " + value(v);
  bar += " | ETA " + format_duration(eta_seconds(step));
  // Pad with spaces over a longer previous bar; '\r' returns to the line start without a newline.
  const size_t width = bar.size();
  if (width < last_bar_width_) bar += std::string(last_bar_width_ - width, ' ');
  last_bar_width_ = width;
  std::ostream& os = out_ ? *out_ : std::cout;
  os << '\r' << bar << std::flush;
  bar_open_ = true;
}

void Progress::finish_line() {
  if (!bar_open_) return;
  std::ostream& os = out_ ? *out_ : std::cout;
  os << '\n' << std::flush;
  bar_open_ = false;
  last_bar_width_ = 0;
}

void Progress::emit_plain(const std::string& line) {
  if (out_) {
    *out_ << line << '\n';
  } else {
    log(line);
  }
}

}  // namespace facetrain
