// Animated GIF output through giflib (Debian's libgif): GIF89a frames streamed to disk one by one, a loop
// forever marker (the NETSCAPE2.0 application extension) and a per-frame delay. Written atomically.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

struct GifFileType;

namespace facetrain {

// Palettes: a grayscale frame (channels = 1) uses one global 256-level gray palette, so gray pixels are stored
// exactly. An RGB frame (channels = 3) gets its own 256-colour local palette by median cut (giflib's
// GifQuantizeBuffer, which bins colours to 5 bits per channel); each palette entry is then replaced by the mean
// of the input pixels mapped to it, which removes giflib's darkening bias (it stores the bin's lower edge) and
// keeps the error within about one 5-bit bin (< 8 levels per channel) for smooth images. No dithering: morph
// frames are smooth and dithering noise would flicker between frames.
//
// Usage: construct, add_frame() per frame (each frame is encoded and written at once; memory is one frame),
// then finish(), which closes the file and renames "<path>.partial" to `path`. A writer destroyed without
// finish() (an exception in between) removes the partial file, so `path` only ever names a complete GIF.
// Not thread-safe. Throws UserError naming the path on I/O errors.
class GifWriter {
 public:
  // delay_centiseconds: display time of each frame (GIF stores 1/100 s; browsers show delays below 2 as 10).
  // loop_count: the NETSCAPE2.0 repeat count; 0 = loop forever (the default, honoured by every browser).
  GifWriter(const std::string& path, int width, int height, int channels, int delay_centiseconds, int loop_count = 0);
  ~GifWriter();
  GifWriter(const GifWriter&) = delete;
  GifWriter& operator=(const GifWriter&) = delete;

  // pixels: height x width x channels uint8, row-major, RGB order for 3 channels.
  void add_frame(const uint8_t* pixels);
  void finish();
  int frames() const { return frames_; }

 private:
  void put_header();
  void check(int status, const char* what);

  std::string path_, partial_;
  int width_, height_, channels_, delay_cs_, loop_count_;
  int frames_ = 0;
  GifFileType* gif_ = nullptr;
  bool finished_ = false;
};

// Frames per second -> GIF delay in centiseconds (rounded, at least 2: browsers replace 0 and 1 by 10).
// UserError starting with `what` (the flag or field that gave it) unless 0 < fps <= 50.
int gif_delay_centiseconds(double fps, const std::string& what = "fps");

}  // namespace facetrain
