// Tests of the per-image preprocessing of ingest: completeness checks of encoded bytes (the truncated JPEG
// that libjpeg would still decode), crop rectangles in closed form, resize/colour conversion against
// independent computations, and the face detector's fallback.
#include <gtest/gtest.h>

#include <cstring>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "core/error.h"
#include "tests/tools/fixtures.h"
#include "tools/image_prep.h"
#include "tools/synth.h"

namespace facetrain {
namespace {

std::vector<uint8_t> encode(const cv::Mat& image, const std::string& ext) {
  std::vector<uint8_t> bytes;
  cv::imencode(ext, image, bytes);
  return bytes;
}

cv::Mat random_image(int rows, int cols, int type, uint64_t seed) {
  cv::Mat m(rows, cols, type);
  cv::RNG rng(seed);
  rng.fill(m, cv::RNG::UNIFORM, 0, 256);
  return m;
}

TEST(CheckEncodedImage, CompleteJpegAndPngAreOk) {
  const cv::Mat image = random_image(40, 30, CV_8UC3, 1);
  const auto jpeg = encode(image, ".jpg");
  const auto png = encode(image, ".png");
  EXPECT_EQ(check_encoded_image(jpeg.data(), jpeg.size()), DecodeStatus::kOk);
  EXPECT_EQ(check_encoded_image(png.data(), png.size()), DecodeStatus::kOk);
  // Bytes after the EOI marker (some cameras append data) do not make a JPEG incomplete.
  auto trailing = jpeg;
  trailing.insert(trailing.end(), {0x00, 0x12, 0x34, 0x56});
  EXPECT_EQ(check_encoded_image(trailing.data(), trailing.size()), DecodeStatus::kOk);
}

TEST(CheckEncodedImage, TruncatedJpegIsCaughtThoughLibjpegDecodesIt) {
  const auto jpeg = encode(random_image(120, 100, CV_8UC3, 2), ".jpg");
  const std::vector<uint8_t> half(jpeg.begin(), jpeg.begin() + static_cast<long>(jpeg.size() / 2));
  // The reason for the byte check: OpenCV returns a (grey-filled) image for this half file.
  const cv::Mat decoded = cv::imdecode(half, cv::IMREAD_COLOR);
  EXPECT_FALSE(decoded.empty());
  EXPECT_EQ(check_encoded_image(half.data(), half.size()), DecodeStatus::kTruncated);
  // Cut just before the final EOI marker.
  const std::vector<uint8_t> no_eoi(jpeg.begin(), jpeg.end() - 2);
  EXPECT_EQ(check_encoded_image(no_eoi.data(), no_eoi.size()), DecodeStatus::kTruncated);
}

TEST(CheckEncodedImage, TruncatedPngAndEmpty) {
  const auto png = encode(random_image(50, 50, CV_8UC3, 3), ".png");
  const std::vector<uint8_t> cut(png.begin(), png.end() - 20);
  EXPECT_EQ(check_encoded_image(cut.data(), cut.size()), DecodeStatus::kTruncated);
  EXPECT_EQ(check_encoded_image(png.data(), 0), DecodeStatus::kEmpty);
}

TEST(ReadImageFile, StatusesForMissingRandomAndTruncatedFiles) {
  testing::TempDir dir;
  cv::Mat out;
  EXPECT_EQ(read_image_file(dir / "nope.jpg", false, &out), DecodeStatus::kMissing);
  testing::write_bytes(dir / "noise.jpg", std::vector<uint8_t>(500, 0x5A));
  EXPECT_EQ(read_image_file(dir / "noise.jpg", false, &out), DecodeStatus::kUnreadable);
  testing::write_bytes(dir / "empty.png", {});
  EXPECT_EQ(read_image_file(dir / "empty.png", false, &out), DecodeStatus::kEmpty);
  const cv::Mat image = random_image(20, 24, CV_8UC3, 4);
  cv::imwrite(dir / "ok.png", image);
  ASSERT_EQ(read_image_file(dir / "ok.png", false, &out), DecodeStatus::kOk);
  EXPECT_EQ(cv::norm(out, image, cv::NORM_INF), 0.0);
  ASSERT_EQ(read_image_file(dir / "ok.png", true, &out), DecodeStatus::kOk);
  EXPECT_EQ(out.channels(), 1);
}

TEST(CropRects, CenterCropClosedForm) {
  EXPECT_EQ(center_crop_rect({178, 218}, 64, 64), cv::Rect(0, 20, 178, 178));
  EXPECT_EQ(center_crop_rect({200, 100}, 64, 64), cv::Rect(50, 0, 100, 100));
  EXPECT_EQ(center_crop_rect({100, 100}, 64, 32), cv::Rect(0, 25, 100, 50));
  EXPECT_EQ(center_crop_rect({28, 28}, 28, 28), cv::Rect(0, 0, 28, 28));
}

TEST(CropRects, FaceCropGrowsCentresAndClamps) {
  // A 40x40 face at (80, 60) with 25% margin -> 60x60 centred on (100, 80).
  EXPECT_EQ(face_crop_rect({300, 300}, cv::Rect(80, 60, 40, 40), 0.25, 64, 64), cv::Rect(70, 50, 60, 60));
  // Near the left edge the crop is shifted inside the image.
  EXPECT_EQ(face_crop_rect({300, 300}, cv::Rect(0, 100, 40, 40), 0.25, 64, 64), cv::Rect(0, 90, 60, 60));
  // Larger than the image: shrunk to fit, keeping the aspect.
  EXPECT_EQ(face_crop_rect({100, 80}, cv::Rect(10, 10, 80, 60), 0.5, 64, 64), cv::Rect(10, 0, 80, 80));
}

TEST(PrepareImage, AreaResizeIsTheBlockAverageAndChannelsAreRgb) {
  // 2x shrink of an 80x64 BGR image: the center 64x64 crop, then 2x2 block means, stored as RGB.
  const cv::Mat bgr = random_image(64, 80, CV_8UC3, 5);
  PrepOptions prep;
  prep.height = prep.width = 32;
  std::vector<uint8_t> out(32 * 32 * 3);
  EXPECT_TRUE(prepare_image(bgr, prep, out.data()));
  int worst = 0;
  for (int y = 0; y < 32; ++y) {
    for (int x = 0; x < 32; ++x) {
      for (int c = 0; c < 3; ++c) {
        int sum = 0;
        for (int dy = 0; dy < 2; ++dy) {
          for (int dx = 0; dx < 2; ++dx) sum += bgr.at<cv::Vec3b>(2 * y + dy, 8 + 2 * x + dx)[2 - c];
        }
        const double expected = sum / 4.0;
        worst = std::max(worst, static_cast<int>(std::lround(std::abs(out[(y * 32 + x) * 3 + c] - expected))));
      }
    }
  }
  EXPECT_LE(worst, 1);
}

TEST(PrepareImage, GrayToRgbAndBgrToGray) {
  const cv::Mat gray = random_image(10, 10, CV_8UC1, 6);
  PrepOptions prep;
  prep.height = prep.width = 10;
  std::vector<uint8_t> rgb(300);
  prepare_image(gray, prep, rgb.data());
  for (int i = 0; i < 100; ++i) {
    ASSERT_EQ(rgb[3 * i], gray.data[i]);
    ASSERT_EQ(rgb[3 * i + 1], gray.data[i]);
    ASSERT_EQ(rgb[3 * i + 2], gray.data[i]);
  }
  const cv::Mat bgr(4, 4, CV_8UC3, cv::Scalar(30, 120, 210));  // B, G, R
  prep.height = prep.width = 4;
  prep.channels = 1;
  std::vector<uint8_t> g(16);
  prepare_image(bgr, prep, g.data());
  // ITU-R BT.601 luma: 0.299 R + 0.587 G + 0.114 B
  EXPECT_NEAR(g[0], 0.299 * 210 + 0.587 * 120 + 0.114 * 30, 1.0);
}

TEST(FaceDetector, NoFaceFallsBackToCenterCrop) {
  const FaceDetector detector(default_face_cascade_path());
  const cv::Mat flat(120, 100, CV_8UC3, cv::Scalar(90, 90, 90));
  EXPECT_EQ(detector.largest_face(flat).area(), 0);
  PrepOptions prep;
  prep.face_detector = &detector;
  prep.height = prep.width = 16;
  std::vector<uint8_t> out(16 * 16 * 3);
  EXPECT_FALSE(prepare_image(flat, prep, out.data()));
  EXPECT_EQ(out[0], 90);
}

TEST(FaceDetector, FindsADrawnFaceOffCentreAndCropsAroundIt) {
  // No photographs ship with Debian's OpenCV packages; synth's drawn faces at 256 px are frontal enough
  // for the Haar cascade in a good share of cases. Take the first one it finds on its own.
  // Each face is pasted at the right edge of a flat 700x400 canvas, where a center crop would hold almost
  // none of it; the first one the cascade finds must be found inside the pasted patch.
  const FaceDetector detector(default_face_cascade_path());
  const cv::Rect patch(430, 120, 256, 256);
  cv::Mat canvas;
  cv::Rect found;
  int tried = 0;
  for (; tried < 60 && found.area() == 0; ++tried) {
    std::vector<uint8_t> rgb(256 * 256 * 3);
    render_synth_face(3, tried, 256, 0, 0, rgb.data());
    canvas = cv::Mat(400, 700, CV_8UC3, cv::Scalar(128, 128, 128));
    cv::cvtColor(cv::Mat(256, 256, CV_8UC3, rgb.data()), canvas(patch), cv::COLOR_RGB2BGR);
    found = detector.largest_face(canvas);
  }
  ASSERT_GT(found.area(), 0) << "the cascade found none of " << tried << " drawn faces";
  EXPECT_EQ(found & patch, found) << "face " << found << " outside the pasted patch " << patch;
  PrepOptions prep;
  prep.face_detector = &detector;
  prep.height = prep.width = 32;
  std::vector<uint8_t> out(32 * 32 * 3);
  EXPECT_TRUE(prepare_image(canvas, prep, out.data()));
  // The crop holds the face box, is centred in the pasted patch (a center crop's centre, (350, 200), is not),
  // and the output is that crop resized.
  const cv::Rect crop = face_crop_rect(canvas.size(), found, prep.face_margin, 32, 32);
  EXPECT_EQ(crop & found, found) << crop;
  EXPECT_TRUE(patch.contains(cv::Point(crop.x + crop.width / 2, crop.y + crop.height / 2))) << crop;
  cv::Mat expected;
  cv::resize(canvas(crop), expected, cv::Size(32, 32), 0, 0, cv::INTER_AREA);
  cv::cvtColor(expected, expected, cv::COLOR_BGR2RGB);
  EXPECT_EQ(std::memcmp(expected.data, out.data(), out.size()), 0);
}

TEST(FaceDetector, MissingCascadeIsAUserErrorNamingIt) {
  try {
    FaceDetector detector("/nonexistent/cascade.xml");
    FAIL() << "no error";
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/cascade.xml"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace facetrain
