// Animated GIF writer on giflib's streaming encoder (see gif_writer.h): screen descriptor and NETSCAPE2.0 loop
// block before the first frame, then per frame a graphics control extension (delay) and the LZW-coded indices.
#include "eval/gif_writer.h"
#include "core/atomic_file.h"

#include <fcntl.h>
#include <gif_lib.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>

#include "core/error.h"

namespace facetrain {
namespace {

// A 256-entry colour map owned by the caller (giflib copies it into the file on EGifPut*Desc).
struct ColorMap {
  ColorMapObject* map = nullptr;
  ColorMap() : map(GifMakeMapObject(256, nullptr)) { FT_CHECK(map != nullptr, "GifMakeMapObject failed"); }
  ~ColorMap() { GifFreeMapObject(map); }
  ColorMap(const ColorMap&) = delete;
  ColorMap& operator=(const ColorMap&) = delete;
};

void fill_gray(ColorMap& palette) {
  for (int i = 0; i < 256; ++i) {
    palette.map->Colors[i].Red = palette.map->Colors[i].Green = palette.map->Colors[i].Blue =
        static_cast<GifByteType>(i);
  }
}

// Median-cut palette (giflib) with each entry moved to the mean of the pixels it stands for.
void quantize_rgb(const uint8_t* rgb, int pixels, ColorMap& palette, std::vector<GifByteType>& indices) {
  std::vector<GifByteType> r(pixels), g(pixels), b(pixels);
  for (int i = 0; i < pixels; ++i) {
    r[i] = rgb[3 * i];
    g[i] = rgb[3 * i + 1];
    b[i] = rgb[3 * i + 2];
  }
  indices.resize(pixels);
  int size = 256;
  for (int i = 0; i < 256; ++i) palette.map->Colors[i] = GifColorType{0, 0, 0};
  FT_CHECK(GifQuantizeBuffer(static_cast<unsigned>(pixels), 1, &size, r.data(), g.data(), b.data(), indices.data(),
                             palette.map->Colors) == GIF_OK,
           "GifQuantizeBuffer failed");
  std::array<std::array<uint64_t, 4>, 256> sums{};
  for (int i = 0; i < pixels; ++i) {
    auto& s = sums[indices[i]];
    s[0] += r[i];
    s[1] += g[i];
    s[2] += b[i];
    s[3] += 1;
  }
  for (int k = 0; k < 256; ++k) {
    const auto& s = sums[k];
    if (s[3] == 0) continue;
    palette.map->Colors[k].Red = static_cast<GifByteType>((s[0] + s[3] / 2) / s[3]);
    palette.map->Colors[k].Green = static_cast<GifByteType>((s[1] + s[3] / 2) / s[3]);
    palette.map->Colors[k].Blue = static_cast<GifByteType>((s[2] + s[3] / 2) / s[3]);
  }
}

}  // namespace

int gif_delay_centiseconds(double fps, const std::string& what) {
  FT_USER_CHECK(fps > 0 && fps <= 50, what << " must be in (0, 50] for a GIF (1/100 s delays), got " << fps);
  return std::max(2, static_cast<int>(std::lround(100.0 / fps)));
}

GifWriter::GifWriter(const std::string& path, int width, int height, int channels, int delay_centiseconds,
                     int loop_count)
    : path_(path),
      partial_(path + ".partial"),
      width_(width),
      height_(height),
      channels_(channels),
      delay_cs_(delay_centiseconds),
      loop_count_(loop_count) {
  FT_CHECK(width > 0 && height > 0 && width <= 65535 && height <= 65535, "GIF size " << width << "x" << height);
  FT_CHECK(channels == 1 || channels == 3, "GIF frames need 1 or 3 channels, got " << channels);
  FT_CHECK(delay_centiseconds >= 0 && delay_centiseconds <= 65535 && loop_count >= 0 && loop_count <= 65535,
           "GIF delay/loop out of range");
  const auto parent = std::filesystem::path(path).parent_path();
  if (!parent.empty()) std::filesystem::create_directories(parent);
  // Opened here rather than by EGifOpenFileName, which creates files with mode 0600; 0666 minus the umask
  // gives the GIF the same permissions as every other output (a report server must be able to read it).
  const int fd = ::open(partial_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0666);
  FT_USER_CHECK(fd >= 0, partial_ << ": cannot open for writing (" << std::strerror(errno) << ")");
  int error = 0;
  gif_ = EGifOpenFileHandle(fd, &error);  // owns fd from here (closed by EGifCloseFile)
  FT_USER_CHECK(gif_ != nullptr, partial_ << ": cannot start a GIF (" << GifErrorString(error) << ")");
}

GifWriter::~GifWriter() {
  if (gif_ != nullptr) {
    int error = 0;
    EGifCloseFile(gif_, &error);
    gif_ = nullptr;
  }
  if (!finished_) {
    std::error_code ec;
    std::filesystem::remove(partial_, ec);
  }
}

void GifWriter::check(int status, const char* what) {
  if (status != GIF_ERROR) return;
  const int error = gif_ != nullptr ? gif_->Error : 0;
  throw UserError(partial_ + ": GIF " + what + " failed (" + GifErrorString(error) + ")");
}

void GifWriter::put_header() {
  // GIF89a: needed for the graphics control (delay) and application (loop) extensions.
  EGifSetGifVersion(gif_, true);
  ColorMap global;
  fill_gray(global);  // RGB frames bring their own local palettes; a global map keeps strict decoders happy
  check(EGifPutScreenDesc(gif_, width_, height_, /*GifColorRes=*/8, /*GifBackGround=*/0, global.map),
        "screen descriptor");
  // NETSCAPE2.0 application extension: sub-block {1, loop count (little-endian uint16)}.
  const GifByteType loop[3] = {1, static_cast<GifByteType>(loop_count_ & 0xff),
                               static_cast<GifByteType>((loop_count_ >> 8) & 0xff)};
  check(EGifPutExtensionLeader(gif_, APPLICATION_EXT_FUNC_CODE), "loop extension");
  check(EGifPutExtensionBlock(gif_, 11, "NETSCAPE2.0"), "loop extension");
  check(EGifPutExtensionBlock(gif_, 3, loop), "loop extension");
  check(EGifPutExtensionTrailer(gif_), "loop extension");
}

void GifWriter::add_frame(const uint8_t* pixels) {
  FT_CHECK(gif_ != nullptr && !finished_, "add_frame after finish");
  if (frames_ == 0) put_header();
  const int count = width_ * height_;

  GraphicsControlBlock gcb;
  gcb.DisposalMode = DISPOSE_DO_NOT;  // every frame covers the whole screen and is opaque
  gcb.UserInputFlag = false;
  gcb.DelayTime = delay_cs_;
  gcb.TransparentColor = NO_TRANSPARENT_COLOR;
  GifByteType extension[4];
  const size_t length = EGifGCBToExtension(&gcb, extension);
  check(EGifPutExtension(gif_, GRAPHICS_EXT_FUNC_CODE, static_cast<int>(length), extension), "frame delay");

  std::vector<GifByteType> indices;
  if (channels_ == 1) {
    indices.assign(pixels, pixels + count);  // the global gray palette: index = gray level
    check(EGifPutImageDesc(gif_, 0, 0, width_, height_, /*GifInterlace=*/false, nullptr), "image descriptor");
  } else {
    ColorMap local;
    quantize_rgb(pixels, count, local, indices);
    check(EGifPutImageDesc(gif_, 0, 0, width_, height_, /*GifInterlace=*/false, local.map), "image descriptor");
  }
  check(EGifPutLine(gif_, indices.data(), count), "pixel data");
  ++frames_;
}

void GifWriter::finish() {
  FT_CHECK(gif_ != nullptr && !finished_, "finish called twice");
  FT_CHECK(frames_ > 0, "a GIF needs at least one frame");
  int error = 0;
  const int status = EGifCloseFile(gif_, &error);
  gif_ = nullptr;  // freed by EGifCloseFile whatever the status
  FT_USER_CHECK(status != GIF_ERROR, partial_ << ": closing the GIF failed (" << GifErrorString(error) << ")");
  publish_file(partial_, path_);
  finished_ = true;
}

}  // namespace facetrain
