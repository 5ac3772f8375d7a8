// Decoding and preprocessing of one image for ingest (see image_prep.h): completeness check of the bytes,
// OpenCV decode, Haar-cascade face crop or center crop, resize and colour conversion.
#include "tools/image_prep.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <unordered_map>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <opencv2/objdetect.hpp>

#include "core/error.h"

namespace facetrain {
namespace fs = std::filesystem;

const char* decode_status_name(DecodeStatus status) {
  switch (status) {
    case DecodeStatus::kOk: return "ok";
    case DecodeStatus::kMissing: return "missing";
    case DecodeStatus::kEmpty: return "empty";
    case DecodeStatus::kTruncated: return "truncated";
    case DecodeStatus::kUnreadable: return "unreadable";
  }
  return "?";
}

DecodeStatus check_encoded_image(const uint8_t* data, size_t size) {
  if (size == 0) return DecodeStatus::kEmpty;
  if (size >= 3 && data[0] == 0xFF && data[1] == 0xD8 && data[2] == 0xFF) {
    // Inside entropy-coded data every 0xFF is stuffed (FF 00) or a restart marker (FF D0-D7), so FF DA and
    // FF D9 only occur as real markers there.
    size_t last_sos = 0;
    bool found_sos = false;
    for (size_t i = size - 1; i >= 1; --i) {
      if (data[i - 1] == 0xFF && data[i] == 0xDA) {
        last_sos = i + 1;
        found_sos = true;
        break;
      }
    }
    if (!found_sos) return DecodeStatus::kTruncated;
    for (size_t i = last_sos; i + 1 < size; ++i) {
      if (data[i] == 0xFF && data[i + 1] == 0xD9) return DecodeStatus::kOk;
    }
    return DecodeStatus::kTruncated;
  }
  static const uint8_t kPngMagic[8] = {0x89, 'P', 'N', 'G', 0x0D, 0x0A, 0x1A, 0x0A};
  if (size >= 8 && std::memcmp(data, kPngMagic, 8) == 0) {
    const size_t from = size > 64 ? size - 64 : 0;
    for (size_t i = from; i + 4 <= size; ++i) {
      if (std::memcmp(data + i, "IEND", 4) == 0) return DecodeStatus::kOk;
    }
    return DecodeStatus::kTruncated;
  }
  return DecodeStatus::kOk;
}

DecodeStatus read_image_file(const std::string& path, bool grayscale, cv::Mat* out) {
  std::unique_ptr<FILE, int (*)(FILE*)> file(std::fopen(path.c_str(), "rb"), &std::fclose);
  if (!file) return DecodeStatus::kMissing;
  std::vector<uint8_t> bytes;
  uint8_t block[1 << 16];
  size_t n = 0;
  while ((n = std::fread(block, 1, sizeof(block), file.get())) > 0) bytes.insert(bytes.end(), block, block + n);
  if (std::ferror(file.get())) return DecodeStatus::kMissing;
  const DecodeStatus status = check_encoded_image(bytes.data(), bytes.size());
  if (status != DecodeStatus::kOk) return status;
  const int flags = (grayscale ? cv::IMREAD_GRAYSCALE : cv::IMREAD_COLOR) | cv::IMREAD_IGNORE_ORIENTATION;
  try {
    *out = cv::imdecode(cv::Mat(1, static_cast<int>(bytes.size()), CV_8UC1, bytes.data()), flags);
  } catch (const cv::Exception&) {
    return DecodeStatus::kUnreadable;
  }
  if (out->empty()) return DecodeStatus::kUnreadable;
  return DecodeStatus::kOk;
}

cv::Rect center_crop_rect(cv::Size src, int width, int height) {
  // Compare src.w/src.h with width/height in integers to avoid rounding at equal aspects.
  const int64_t lhs = static_cast<int64_t>(src.width) * height, rhs = static_cast<int64_t>(src.height) * width;
  int w = src.width, h = src.height;
  if (lhs > rhs) {
    w = static_cast<int>(std::lround(static_cast<double>(src.height) * width / height));  // too wide
  } else if (lhs < rhs) {
    h = static_cast<int>(std::lround(static_cast<double>(src.width) * height / width));  // too tall
  }
  w = std::clamp(w, 1, src.width);
  h = std::clamp(h, 1, src.height);
  return cv::Rect((src.width - w) / 2, (src.height - h) / 2, w, h);
}

cv::Rect face_crop_rect(cv::Size src, const cv::Rect& face, double margin, int width, int height) {
  const double aspect = static_cast<double>(width) / height;
  double w = face.width * (1.0 + 2.0 * margin), h = face.height * (1.0 + 2.0 * margin);
  if (w / h < aspect) {
    w = h * aspect;
  } else {
    h = w / aspect;
  }
  const double fit = std::min({1.0, src.width / w, src.height / h});
  w *= fit;
  h *= fit;
  const int iw = std::clamp(static_cast<int>(std::lround(w)), 1, src.width);
  const int ih = std::clamp(static_cast<int>(std::lround(h)), 1, src.height);
  const double cx = face.x + face.width / 2.0, cy = face.y + face.height / 2.0;
  const int x = std::clamp(static_cast<int>(std::lround(cx - iw / 2.0)), 0, src.width - iw);
  const int y = std::clamp(static_cast<int>(std::lround(cy - ih / 2.0)), 0, src.height - ih);
  return cv::Rect(x, y, iw, ih);
}

FaceDetector::FaceDetector(const std::string& cascade_path) : path_(cascade_path) {
  FT_USER_CHECK(fs::is_regular_file(path_), "face cascade " << path_ << " does not exist (install opencv-data)");
  cv::CascadeClassifier probe;
  FT_USER_CHECK(probe.load(path_), "face cascade " << path_ << " is not an OpenCV cascade file");
}

cv::Rect FaceDetector::largest_face(const cv::Mat& image) const {
  thread_local std::unordered_map<std::string, std::unique_ptr<cv::CascadeClassifier>> classifiers;
  auto& classifier = classifiers[path_];
  if (!classifier) {
    classifier = std::make_unique<cv::CascadeClassifier>();
    FT_CHECK(classifier->load(path_), "cannot load " << path_);
  }
  cv::Mat gray;
  if (image.channels() == 3) {
    cv::cvtColor(image, gray, cv::COLOR_BGR2GRAY);
  } else {
    gray = image;
  }
  // Face data sets show faces large (CelebA's aligned crops: about half the width), so detection runs on
  // the image shrunk to a short side of at most kDetectSide px, looking for faces of at least kMinFace of
  // it, in scale steps of kScaleStep. Measured on 178x218 JPEGs (tools/bench/ingest_faces.sh): detection
  // was 23 ms/image at (256 px, 0.15, 1.1) and 4.6 ms at (160, 0.25, 1.15); at (120, 0.3, 1.2) it is about
  // 2 ms, finding 12 % fewer of synth's drawn faces and fewer faces in face-free images (tools/README.md).
  constexpr int kDetectSide = 120;
  constexpr double kMinFace = 0.3, kScaleStep = 1.2;
  constexpr int kNeighbours = 4;
  const int short_side = std::min(gray.cols, gray.rows);
  const double scale = short_side > kDetectSide ? static_cast<double>(kDetectSide) / short_side : 1.0;
  cv::Mat small;
  if (scale < 1.0) {
    cv::resize(gray, small, cv::Size(), scale, scale, cv::INTER_AREA);
  } else {
    small = gray;
  }
  cv::Mat equalized;
  cv::equalizeHist(small, equalized);
  const int min_side = std::max(24, static_cast<int>(kMinFace * std::min(small.cols, small.rows)));
  std::vector<cv::Rect> faces;
  classifier->detectMultiScale(equalized, faces, kScaleStep, kNeighbours, 0, cv::Size(min_side, min_side));
  if (faces.empty()) return cv::Rect();
  const cv::Rect best = *std::max_element(faces.begin(), faces.end(),
                                          [](const cv::Rect& a, const cv::Rect& b) { return a.area() < b.area(); });
  return cv::Rect(static_cast<int>(std::lround(best.x / scale)), static_cast<int>(std::lround(best.y / scale)),
                  static_cast<int>(std::lround(best.width / scale)),
                  static_cast<int>(std::lround(best.height / scale))) &
         cv::Rect(0, 0, image.cols, image.rows);
}

std::string default_face_cascade_path() {
  const char* candidates[] = {
      "/usr/share/opencv4/haarcascades/haarcascade_frontalface_default.xml",
      "/usr/share/opencv/haarcascades/haarcascade_frontalface_default.xml",
      "/usr/local/share/opencv4/haarcascades/haarcascade_frontalface_default.xml",
  };
  for (const char* path : candidates) {
    if (fs::is_regular_file(path)) return path;
  }
  return "";
}

bool prepare_image(const cv::Mat& decoded, const PrepOptions& options, uint8_t* out) {
  FT_CHECK(decoded.depth() == CV_8U && (decoded.channels() == 1 || decoded.channels() == 3),
           "prepare_image expects 8-bit gray or BGR, got type " << decoded.type());
  FT_CHECK(options.channels == 1 || options.channels == 3, "channels " << options.channels);
  bool face_found = true;
  cv::Rect crop;
  if (options.face_detector != nullptr) {
    const cv::Rect face = options.face_detector->largest_face(decoded);
    if (face.area() > 0) {
      crop = face_crop_rect(decoded.size(), face, options.face_margin, options.width, options.height);
    } else {
      face_found = false;
    }
  }
  if (crop.area() == 0) crop = center_crop_rect(decoded.size(), options.width, options.height);
  const cv::Mat region = decoded(crop);

  cv::Mat resized;
  if (region.cols == options.width && region.rows == options.height) {
    resized = region;
  } else {
    const bool shrinking = region.cols >= options.width && region.rows >= options.height;
    cv::resize(region, resized, cv::Size(options.width, options.height), 0, 0,
               shrinking ? cv::INTER_AREA : cv::INTER_LINEAR);
  }

  cv::Mat target(options.height, options.width, CV_8UC(options.channels), out);
  if (resized.channels() == 3 && options.channels == 3) {
    cv::cvtColor(resized, target, cv::COLOR_BGR2RGB);
  } else if (resized.channels() == 3) {
    cv::cvtColor(resized, target, cv::COLOR_BGR2GRAY);
  } else if (options.channels == 3) {
    cv::cvtColor(resized, target, cv::COLOR_GRAY2RGB);
  } else {
    resized.copyTo(target);
  }
  FT_CHECK(target.data == out, "OpenCV reallocated the output image");
  return face_found;
}

}  // namespace facetrain
