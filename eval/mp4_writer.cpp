// Mp4Writer (see mp4_writer.h).
#include "eval/mp4_writer.h"

#include <filesystem>
#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>
#include <opencv2/videoio.hpp>
#include <opencv2/videoio/registry.hpp>

#include "core/atomic_file.h"
#include "core/error.h"

namespace facetrain {

namespace fs = std::filesystem;

Mp4Writer::Mp4Writer(const std::string& path, double fps, int width, int height) : path_(path) {
  // MPEG-4 part 2 needs even sizes; odd frames are padded by one replicated row/column.
  width_ = width + (width % 2);
  height_ = height + (height % 2);
  partial_ = (fs::path(path).parent_path() / ("." + fs::path(path).stem().string() + ".partial.mp4")).string();
  if (!cv::videoio_registry::hasBackend(cv::CAP_FFMPEG)) {
    error_ = "OpenCV has no FFmpeg video backend in this build";
    return;
  }
  try {
    writer_ = std::make_unique<cv::VideoWriter>();
    writer_->open(partial_, cv::CAP_FFMPEG, cv::VideoWriter::fourcc('m', 'p', '4', 'v'), fps, cv::Size(width_, height_),
                  /*isColor=*/true);
    if (!writer_->isOpened()) error_ = "OpenCV's FFmpeg backend could not open an 'mp4v' writer for " + partial_;
  } catch (const cv::Exception& e) {
    error_ = std::string("OpenCV VideoWriter: ") + e.what();
  }
  if (!error_.empty()) writer_.reset();
}

Mp4Writer::~Mp4Writer() {
  if (writer_) writer_->release();
  if (!finished_) {
    std::error_code ec;
    fs::remove(partial_, ec);
  }
}

void Mp4Writer::write(const cv::Mat& frame) {
  if (!writer_) return;
  cv::Mat bgr;
  cv::cvtColor(frame, bgr, frame.channels() == 3 ? cv::COLOR_RGB2BGR : cv::COLOR_GRAY2BGR);
  if (bgr.cols != width_ || bgr.rows != height_) {
    cv::copyMakeBorder(bgr, bgr, 0, height_ - bgr.rows, 0, width_ - bgr.cols, cv::BORDER_REPLICATE);
  }
  try {
    writer_->write(bgr);
  } catch (const cv::Exception& e) {
    error_ = std::string("OpenCV VideoWriter::write: ") + e.what();
    writer_.reset();
  }
}

bool Mp4Writer::finish() {
  if (!writer_) return false;
  writer_->release();
  writer_.reset();
  std::error_code ec;
  if (!fs::exists(partial_, ec) || fs::file_size(partial_, ec) == 0) {
    error_ = "OpenCV wrote no MP4 data to " + partial_;
    return false;
  }
  try {
    publish_file(partial_, path_);  // fsync, rename, directory fsync (core/atomic_file.h)
  } catch (const UserError& e) {
    error_ = e.what();
    return false;
  }
  finished_ = true;
  return true;
}

}  // namespace facetrain
