// MP4 output of the latent morphs through OpenCV's FFmpeg backend ('mp4v'). Any failure (no FFmpeg backend,
// no encoder, a write error) disables the video with a reason instead of failing the command: the GIF and
// the strip are the primary outputs. Written as a hidden .partial.mp4 file and renamed when finished.
#pragma once

#include <memory>
#include <string>

namespace cv {
class Mat;
class VideoWriter;
}  // namespace cv

namespace facetrain {

class Mp4Writer {
 public:
  // width x height frames at `fps`; odd sizes are padded by one replicated row/column (MPEG-4 part 2).
  Mp4Writer(const std::string& path, double fps, int width, int height);
  ~Mp4Writer();
  Mp4Writer(const Mp4Writer&) = delete;
  Mp4Writer& operator=(const Mp4Writer&) = delete;

  bool ok() const { return writer_ != nullptr; }
  const std::string& error() const { return error_; }
  // frame: an RGB or gray upscaled frame.
  void write(const cv::Mat& frame);
  // Closes the file and moves it into place; false (with error()) when nothing usable was written.
  bool finish();

 private:
  std::string path_, partial_, error_;
  int width_ = 0, height_ = 0;
  std::unique_ptr<cv::VideoWriter> writer_;
  bool finished_ = false;
};

}  // namespace facetrain
