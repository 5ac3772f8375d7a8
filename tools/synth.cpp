// Procedural face-like images (see synth.h). Shapes are drawn in face coordinates (origin at the face
// centre, y down, pixels at the target size) and mapped through the pose, so rotation and scale never
// resample the picture; anti-aliased drawing with 4 fractional bits keeps small sizes smooth.
#include "tools/synth.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>

#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>

#include "core/error.h"
#include "core/log.h"
#include "datastore/random.h"
#include "tools/ordered_pipeline.h"

namespace facetrain {
namespace {

constexpr int kShift = 4;  // fractional bits of drawing coordinates
constexpr double kFixed = 1 << kShift;
constexpr double kPi = 3.14159265358979323846;

// Independent streams of one image: what it looks like, and which split it lands in.
enum class Stream : uint64_t { kPicture = 1, kSplit = 2 };

uint64_t stream_seed(uint64_t seed, int64_t index, Stream stream) {
  SplitMix64 a(seed ^ (static_cast<uint64_t>(stream) * 0xD1B54A32D192ED03ULL));
  SplitMix64 b(a.next() ^ static_cast<uint64_t>(index));
  return b.next();
}

struct Pose {
  cv::Point2d center;
  double angle = 0;  // radians, counter-clockwise on screen is negative here (y down); only its sign matters
  double scale = 1;
};

cv::Point2d to_image(const Pose& p, double x, double y) {
  const double c = std::cos(p.angle), s = std::sin(p.angle);
  return {p.center.x + p.scale * (c * x - s * y), p.center.y + p.scale * (s * x + c * y)};
}

cv::Point fixed(const cv::Point2d& p) {
  return {static_cast<int>(std::lround(p.x * kFixed)), static_cast<int>(std::lround(p.y * kFixed))};
}

class Painter {
 public:
  Painter(cv::Mat& image, const Pose& pose, double unit) : image_(image), pose_(pose), unit_(unit) {}

  // Ellipse centred at (x, y) with half-axes (ax, ay), rotated by `angle` degrees in face coordinates.
  void ellipse(double x, double y, double ax, double ay, double angle, double from, double to, const cv::Scalar& color,
               double thickness) {
    const cv::Size axes(std::max(1, static_cast<int>(std::lround(ax * pose_.scale * kFixed))),
                        std::max(1, static_cast<int>(std::lround(ay * pose_.scale * kFixed))));
    cv::ellipse(image_, fixed(to_image(pose_, x, y)), axes, angle + pose_.angle * 180.0 / kPi, from, to, color,
                stroke(thickness), cv::LINE_AA, kShift);
  }
  void polyline(const std::vector<cv::Point2d>& points, bool closed, const cv::Scalar& color, double thickness) {
    const std::vector<cv::Point> p = map(points);
    const cv::Point* pts[] = {p.data()};
    const int n[] = {static_cast<int>(p.size())};
    cv::polylines(image_, pts, n, 1, closed, color, stroke(thickness), cv::LINE_AA, kShift);
  }
  void fill(const std::vector<cv::Point2d>& points, const cv::Scalar& color) {
    const std::vector<cv::Point> p = map(points);
    const cv::Point* pts[] = {p.data()};
    const int n[] = {static_cast<int>(p.size())};
    cv::fillPoly(image_, pts, n, 1, color, cv::LINE_AA, kShift);
  }
  void line(double x0, double y0, double x1, double y1, const cv::Scalar& color, double thickness) {
    cv::line(image_, fixed(to_image(pose_, x0, y0)), fixed(to_image(pose_, x1, y1)), color, stroke(thickness),
             cv::LINE_AA, kShift);
  }

 private:
  // thickness < 0: filled; else a line width in 64-px units, at least one pixel.
  int stroke(double thickness) const {
    if (thickness < 0) return cv::FILLED;
    return std::max(1, static_cast<int>(std::lround(thickness * unit_ * pose_.scale)));
  }
  std::vector<cv::Point> map(const std::vector<cv::Point2d>& points) const {
    std::vector<cv::Point> p;
    p.reserve(points.size());
    for (const auto& q : points) p.push_back(fixed(to_image(pose_, q.x, q.y)));
    return p;
  }
  cv::Mat& image_;
  Pose pose_;
  double unit_;
};

cv::Scalar mix(const cv::Scalar& a, const cv::Scalar& b, double t) { return a * (1.0 - t) + b * t; }

cv::Scalar jitter(SplitMix64& rng, const cv::Scalar& c, double amount) {
  cv::Scalar out;
  for (int k = 0; k < 3; ++k) out[k] = std::clamp(c[k] + rng.uniform(-amount, amount), 0.0, 255.0);
  return out;
}

cv::Scalar pick(SplitMix64& rng, std::initializer_list<cv::Scalar> palette) {
  return *(palette.begin() + rng.below(palette.size()));
}

// Points of the mouth curve: corners at x = cx -/+ half_width, middle `sag` lower than the corners.
std::vector<cv::Point2d> mouth_curve(double cx, double cy, double half_width, double sag, bool reverse) {
  std::vector<cv::Point2d> p;
  constexpr int kPoints = 13;
  for (int k = 0; k < kPoints; ++k) {
    const double t = -1.0 + 2.0 * (reverse ? kPoints - 1 - k : k) / (kPoints - 1);
    p.emplace_back(cx + t * half_width, cy + sag * (1.0 - t * t));
  }
  return p;
}

}  // namespace

SynthTask parse_synth_task(const std::string& name, const std::string& what) {
  if (name == "smiling") return SynthTask::kSmiling;
  if (name == "glasses") return SynthTask::kGlasses;
  throw UserError(what + " '" + name + "' is not smiling or glasses");
}

SynthFace render_synth_face(uint64_t seed, int64_t index, int size, double val_fraction, double test_fraction,
                            uint8_t* out) {
  SynthFace face;
  {
    SplitMix64 split_rng(stream_seed(seed, index, Stream::kSplit));
    const double u = split_rng.uniform();
    face.split = u < test_fraction ? Split::kTest : (u < test_fraction + val_fraction ? Split::kVal : Split::kTrain);
  }
  SplitMix64 rng(stream_seed(seed, index, Stream::kPicture));
  face.smiling = rng.uniform() < 0.5;
  face.glasses = rng.uniform() < 0.5;
  const double S = size, unit = S / 64.0;

  // 1. background: two colours blended along a random direction
  const cv::Scalar bg0(rng.uniform(20, 235), rng.uniform(20, 235), rng.uniform(20, 235));
  const cv::Scalar bg1 = jitter(rng, bg0, 60);
  const double bg_dir = rng.uniform(0, 2 * kPi);
  cv::Mat image(size, size, CV_8UC3);
  {
    // t = clamp(0.5 + d . (p - centre) / S) is a sum of a column and a row term.
    const float dx = static_cast<float>(std::cos(bg_dir) / S), dy = static_cast<float>(std::sin(bg_dir) / S);
    std::vector<float> column(static_cast<size_t>(size));
    for (int x = 0; x < size; ++x) column[static_cast<size_t>(x)] = 0.5f + dx * (x - size / 2.0f);
    const float base[3] = {static_cast<float>(bg0[0]), static_cast<float>(bg0[1]), static_cast<float>(bg0[2])};
    const float step[3] = {static_cast<float>(bg1[0] - bg0[0]), static_cast<float>(bg1[1] - bg0[1]),
                           static_cast<float>(bg1[2] - bg0[2])};
    for (int y = 0; y < size; ++y) {
      uint8_t* row = image.ptr<uint8_t>(y);
      const float ry = dy * (y - size / 2.0f);
      for (int x = 0; x < size; ++x) {
        const float t = std::clamp(column[static_cast<size_t>(x)] + ry, 0.0f, 1.0f);
        for (int c = 0; c < 3; ++c) row[3 * x + c] = cv::saturate_cast<uint8_t>(base[c] + step[c] * t);
      }
    }
  }

  // 2. pose and proportions
  Pose pose;
  pose.center = {S / 2 + rng.uniform(-0.06, 0.06) * S, S / 2 + rng.uniform(-0.09, 0.04) * S};
  pose.angle = rng.uniform(-15, 15) * kPi / 180.0;
  pose.scale = rng.uniform(0.85, 1.1);
  const double a = 0.25 * S * rng.uniform(0.9, 1.1);  // face half-width
  const double b = a * rng.uniform(1.2, 1.4);         // face half-height
  Painter paint(image, pose, unit);

  const cv::Scalar skin = jitter(rng, mix(cv::Scalar(236, 200, 170), cv::Scalar(92, 60, 42), rng.uniform()), 12);
  const bool has_hair = rng.uniform() < 0.9;
  const bool long_hair = rng.uniform() < 0.3;
  const cv::Scalar hair =
      jitter(rng,
             pick(rng, {cv::Scalar(25, 20, 18), cv::Scalar(70, 45, 30), cv::Scalar(120, 80, 50),
                        cv::Scalar(215, 180, 110), cv::Scalar(160, 70, 35), cv::Scalar(170, 170, 170)}),
             15);
  const cv::Scalar clothes(rng.uniform(0, 255), rng.uniform(0, 255), rng.uniform(0, 255));

  // 3. body, hair behind the head, ears, face
  paint.ellipse(0, 1.6 * b, 1.7 * a, 0.75 * b, 0, 0, 360, clothes, -1);
  paint.ellipse(0, 1.0 * b, 0.45 * a, 0.5 * b, 0, 0, 360, skin * 0.88, -1);
  if (has_hair) {
    paint.ellipse(0, -0.1 * b, 1.12 * a, 1.05 * b, 0, 0, 360, hair, -1);
    if (long_hair) paint.ellipse(0, 0.45 * b, 1.18 * a, 1.05 * b, 0, 0, 360, hair, -1);
  }
  for (int side : {-1, 1}) paint.ellipse(side * 0.98 * a, 0.02 * b, 0.14 * a, 0.22 * b, 0, 0, 360, skin * 0.9, -1);
  paint.ellipse(0, 0, a, b, 0, 0, 360, skin, -1);
  if (has_hair) {
    const double depth = rng.uniform(0.35, 0.6);
    paint.ellipse(0, -0.55 * b, 0.97 * a, depth * b, 0, 180, 360, hair, -1);
  }

  // 4. eyes, brows, nose
  const double ex = 0.38 * a * rng.uniform(0.9, 1.1), ey = -0.12 * b * rng.uniform(0.8, 1.2);
  const double ew = 0.17 * a * rng.uniform(0.85, 1.15), eh = ew * rng.uniform(0.5, 0.65);
  const double gaze_x = rng.uniform(-0.3, 0.3) * ew, gaze_y = rng.uniform(-0.15, 0.15) * eh;
  const cv::Scalar iris = jitter(
      rng,
      pick(rng, {cv::Scalar(90, 55, 30), cv::Scalar(70, 110, 170), cv::Scalar(80, 120, 70), cv::Scalar(40, 30, 25)}),
      10);
  const double sclera = rng.uniform(225, 255);
  const double brow_tilt = rng.uniform(-0.25, 0.25) * eh;
  const double brow_lift = rng.uniform(1.6, 2.3) * eh;
  const cv::Scalar brow_color = has_hair ? hair * 0.7 : skin * 0.6;
  for (int side : {-1, 1}) {
    const double cx = side * ex;
    paint.ellipse(cx, ey, ew, eh, 0, 0, 360, cv::Scalar(sclera, sclera, sclera), -1);
    paint.ellipse(cx + gaze_x, ey + gaze_y, eh * 0.95, eh * 0.95, 0, 0, 360, iris, -1);
    paint.ellipse(cx + gaze_x, ey + gaze_y, eh * 0.45, eh * 0.45, 0, 0, 360, cv::Scalar(10, 10, 10), -1);
    paint.line(cx - side * 0.9 * ew, ey - brow_lift + brow_tilt, cx + side * 1.0 * ew, ey - brow_lift - brow_tilt,
               brow_color, rng.uniform(1.0, 2.2));
  }
  const double nose_dx = rng.uniform(-0.06, 0.06) * a, nose_len = rng.uniform(0.2, 0.3) * b;
  const cv::Scalar nose_color = skin * rng.uniform(0.65, 0.8);
  paint.polyline({{0, 0.0}, {nose_dx, nose_len}, {nose_dx - 0.1 * a, nose_len + 0.03 * b}}, false, nose_color, 1.0);

  // 5. mouth: the smiling class bends the corners up (the middle sags 0.3-0.65 half-widths below them,
  // 45% with an open mouth and teeth); the neutral class is flat or slightly down (-0.1..0.06).
  const double mx = rng.uniform(-0.04, 0.04) * a, my = 0.52 * b * rng.uniform(0.92, 1.08);
  const double mw = 0.42 * a * rng.uniform(0.85, 1.15);
  const double sag = face.smiling ? mw * rng.uniform(0.3, 0.65) : mw * rng.uniform(-0.1, 0.06);
  const bool open_mouth = face.smiling && rng.uniform() < 0.45;
  const cv::Scalar lips = mix(skin, cv::Scalar(170, 60, 70), rng.uniform(0.45, 0.8));
  const double lip_width = rng.uniform(1.2, 2.2);
  if (open_mouth) {
    const double top = sag * 0.35, bottom = sag * 1.5;
    std::vector<cv::Point2d> outline = mouth_curve(mx, my - sag / 2, mw, top, false);
    const std::vector<cv::Point2d> lower = mouth_curve(mx, my - sag / 2, mw, bottom, true);
    outline.insert(outline.end(), lower.begin(), lower.end());
    paint.fill(outline, cv::Scalar(90, 20, 30));
    std::vector<cv::Point2d> teeth = mouth_curve(mx, my - sag / 2, mw * 0.92, top, false);
    const std::vector<cv::Point2d> teeth_low =
        mouth_curve(mx, my - sag / 2 + 0.3 * (bottom - top), mw * 0.8, top, true);
    teeth.insert(teeth.end(), teeth_low.begin(), teeth_low.end());
    const double white = rng.uniform(215, 250);
    paint.fill(teeth, cv::Scalar(white, white, white * 0.95));
    paint.polyline(outline, true, lips, lip_width * 0.8);
  } else {
    paint.polyline(mouth_curve(mx, my - sag / 2, mw, sag, false), false, lips, lip_width);
  }

  // 6. glasses: round or oval frames, a bridge and temples; a quarter are sunglasses (dark lenses)
  if (face.glasses) {
    const bool round = rng.uniform() < 0.5;
    const double rw = ew * rng.uniform(1.45, 1.85), rh = round ? rw : rw * rng.uniform(0.7, 0.9);
    const cv::Scalar frame = rng.uniform() < 0.6
                                 ? cv::Scalar::all(rng.uniform(10, 60))
                                 : cv::Scalar(rng.uniform(0, 255), rng.uniform(0, 255), rng.uniform(0, 255));
    const double width = rng.uniform(1.0, 2.0);
    if (rng.uniform() < 0.25) {
      cv::Mat overlay = image.clone();
      Painter lens(overlay, pose, unit);
      const cv::Scalar tint = cv::Scalar::all(rng.uniform(10, 50));
      for (int side : {-1, 1}) lens.ellipse(side * ex, ey, rw, rh, 0, 0, 360, tint, -1);
      const double alpha = rng.uniform(0.7, 0.9);
      cv::addWeighted(overlay, alpha, image, 1.0 - alpha, 0.0, image);
    }
    for (int side : {-1, 1}) {
      paint.ellipse(side * ex, ey, rw, rh, 0, 0, 360, frame, width);
      paint.line(side * (ex + rw), ey - 0.2 * rh, side * 0.99 * a, ey - 0.1 * rh, frame, width);
    }
    paint.line(-(ex - rw), ey - 0.2 * rh, ex - rw, ey - 0.2 * rh, frame, width);
  }

  // 7. camera: blur for half of them, then light gradient, contrast, brightness and Gaussian noise
  if (rng.uniform() < 0.5) cv::GaussianBlur(image, image, cv::Size(0, 0), rng.uniform(0.3, 1.0) * unit);
  const double light = rng.uniform(0.0, 0.25), light_dir = rng.uniform(0, 2 * kPi);
  const double contrast = rng.uniform(0.8, 1.15), brightness = rng.uniform(-20, 20);
  const double sigma = rng.uniform(2.0, 10.0);
  const float lx = static_cast<float>(std::cos(light_dir) * light / S);
  const float ly = static_cast<float>(std::sin(light_dir) * light / S);
  cv::Mat shaded;
  image.convertTo(shaded, CV_32FC3);
  std::vector<float> column(static_cast<size_t>(size));
  for (int x = 0; x < size; ++x) column[static_cast<size_t>(x)] = lx * (x - size / 2.0f);
  for (int y = 0; y < size; ++y) {
    float* row = shaded.ptr<float>(y);
    const float gain_y = 1.0f + ly * (y - size / 2.0f);
    for (int x = 0; x < size; ++x) {
      const float gain = static_cast<float>(contrast) * (gain_y + column[static_cast<size_t>(x)]);
      for (int c = 0; c < 3; ++c) row[3 * x + c] = row[3 * x + c] * gain + static_cast<float>(brightness);
    }
  }
  cv::Mat noise(size, size, CV_32FC3);
  cv::RNG(rng.next()).fill(noise, cv::RNG::NORMAL, 0.0, sigma);
  shaded += noise;
  cv::Mat target(size, size, CV_8UC3, out);
  shaded.convertTo(target, CV_8UC3);  // rounds and saturates
  FT_CHECK(target.data == out, "OpenCV reallocated the synth output");
  return face;
}

SynthSummary run_synth(const SynthOptions& o) {
  const auto start = std::chrono::steady_clock::now();
  // The options as the launcher checked them (synth.h).
  FT_CHECK(!o.output.empty(), "no output");
  FT_CHECK(o.count >= 1 && o.count <= kMaxSynthCount, "count " << o.count);
  FT_CHECK(o.size >= kMinSynthSize && o.size <= kMaxSynthSize, "size " << o.size);
  FT_CHECK(o.val_fraction >= 0 && o.test_fraction >= 0 && o.val_fraction + o.test_fraction < 1,
           "fractions " << o.val_fraction << ", " << o.test_fraction);
  FT_CHECK(o.threads >= 0, "threads " << o.threads);
  FT_USER_CHECK(o.overwrite || !std::filesystem::exists(o.output),
                o.output << " already exists (set overwrite to replace it)");

  StoreLayout layout;
  layout.height = layout.width = o.size;
  layout.channels = 3;
  layout.class_names = o.task == SynthTask::kSmiling ? std::vector<std::string>{"neutral", "smiling"}
                                                     : std::vector<std::string>{"no_glasses", "glasses"};
  layout.label_source = o.task == SynthTask::kSmiling ? "synth:smiling" : "synth:glasses";
  layout.attribute_names = {"Smiling", "Eyeglasses"};
  SynthSummary summary;
  summary.output = o.output;
  summary.count = o.count;
  summary.class_names = layout.class_names;
  summary.counts.assign(2, std::vector<int64_t>(3, 0));
  if (!o.quiet) {
    log("synth: " + std::to_string(o.count) + " images " + std::to_string(o.size) + "x" + std::to_string(o.size) +
        "x3, task " + layout.label_source + ", seed " + std::to_string(o.seed) + " -> " + o.output);
  }

  StoreWriter writer(o.output, layout, o.overwrite);
  const int64_t image_bytes = int64_t(o.size) * o.size * 3;
  const int64_t window = std::clamp<int64_t>((32ll << 20) / image_bytes, 64, 4096);
  std::vector<uint8_t> pixels(static_cast<size_t>(2 * window * image_bytes));
  std::vector<SynthFace> faces(static_cast<size_t>(2 * window));
  char name[32];
  auto produce = [&](int64_t i, int64_t slot) {
    faces[static_cast<size_t>(slot)] =
        render_synth_face(o.seed, i, o.size, o.val_fraction, o.test_fraction, pixels.data() + slot * image_bytes);
  };
  auto consume = [&](int64_t i, int64_t slot) {
    const SynthFace& f = faces[static_cast<size_t>(slot)];
    const int64_t label = o.task == SynthTask::kSmiling ? f.smiling : f.glasses;
    std::snprintf(name, sizeof(name), "synth/%09lld", static_cast<long long>(i));
    writer.append(pixels.data() + slot * image_bytes, label, f.split, name,
                  {static_cast<int8_t>(f.smiling ? 1 : -1), static_cast<int8_t>(f.glasses ? 1 : -1)});
    ++summary.counts[static_cast<size_t>(label)][static_cast<size_t>(f.split)];
  };
  auto last_report = std::chrono::steady_clock::now();
  auto after_window = [&](int64_t done) {
    const auto now = std::chrono::steady_clock::now();
    if (o.quiet || done == o.count || std::chrono::duration<double>(now - last_report).count() < 2.0) return;
    last_report = now;
    char line[128];
    std::snprintf(line, sizeof(line), "synth: %lld/%lld images (%.0f images/s)", static_cast<long long>(done),
                  static_cast<long long>(o.count), done / std::chrono::duration<double>(now - start).count());
    log(line);
  };
  {
    OpenCvThreadsScope threads(o.threads);
    run_ordered_pipeline(o.count, window, produce, consume, after_window, o.stop,
                         "synth interrupted by a signal; removed the partial output " + o.output + ".partial");
  }
  writer.finish();
  summary.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return summary;
}

}  // namespace facetrain
