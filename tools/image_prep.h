// Turning one encoded image file into the stored pixels: truncation check, OpenCV decode, optional face crop
// (OpenCV's frontal-face Haar cascade from opencv-data), center crop to the target aspect, resize, RGB/gray.
// Every function here is a pure function of its inputs, so ingest output never depends on thread count.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <opencv2/core.hpp>

namespace facetrain {

enum class DecodeStatus {
  kOk,
  kMissing,     // the file could not be opened or read
  kEmpty,       // zero bytes
  kTruncated,   // JPEG without an EOI marker after its last scan, or PNG without IEND
  kUnreadable,  // OpenCV could not decode it (not an image, or corrupt beyond repair)
};
const char* decode_status_name(DecodeStatus status);  // "missing", "empty", "truncated", "unreadable"

// Checks that an encoded JPEG or PNG is complete, without decoding it. A truncated JPEG is otherwise decoded
// by libjpeg "successfully" with grey rows and only a warning on stderr, so ingest checks bytes first:
// a JPEG must hold an EOI marker (FF D9) after its last SOS marker (FF DA) — this ignores the EOI of an
// EXIF thumbnail and tolerates trailing bytes after the real EOI; a PNG must hold its IEND chunk in the
// last 64 bytes. Other formats return kOk here and are left to the decoder.
DecodeStatus check_encoded_image(const uint8_t* data, size_t size);

// Reads and decodes a file: 8-bit BGR (CV_8UC3) when `grayscale` is false, else CV_8UC1. EXIF orientation
// is ignored (as PIL / Keras load_img do), so pixels match what the seed notebooks saw.
DecodeStatus read_image_file(const std::string& path, bool grayscale, cv::Mat* out);

// The largest rectangle of aspect width:height centered in an image of size `src`.
cv::Rect center_crop_rect(cv::Size src, int width, int height);
// A crop of aspect width:height around `face`, grown by `margin` (fraction of the face box) on every side,
// shrunk if needed to fit, then shifted inside the image.
cv::Rect face_crop_rect(cv::Size src, const cv::Rect& face, double margin, int width, int height);

// Finds the largest frontal face with a Haar cascade. Thread-safe: each thread gets its own
// cv::CascadeClassifier (they are not safe to share), loaded on first use from the same file.
class FaceDetector {
 public:
  // Throws UserError naming the file when it is missing or not a cascade.
  explicit FaceDetector(const std::string& cascade_path);
  // The largest detected face in image coordinates, or an empty rect when there is none.
  cv::Rect largest_face(const cv::Mat& image) const;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// haarcascade_frontalface_default.xml from opencv-data (/usr/share/opencv4/haarcascades); "" when opencv-data
// is not installed (the caller says which option needs it).
std::string default_face_cascade_path();

struct PrepOptions {
  int height = 64, width = 64;
  int channels = 3;                             // 3: RGB, 1: grayscale
  const FaceDetector* face_detector = nullptr;  // set: crop around the largest face
  double face_margin = 0.25;                    // fraction of the face box added on every side
};

// Crops (face or center), resizes (INTER_AREA when shrinking, INTER_LINEAR otherwise) and converts a decoded
// BGR or grayscale image into out (height x width x channels, RGB order). Returns false when face cropping
// was asked for and no face was found (the center crop is used then).
bool prepare_image(const cv::Mat& decoded, const PrepOptions& options, uint8_t* out);

}  // namespace facetrain
