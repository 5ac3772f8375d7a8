// IDX reading with zlib and the file naming of MNIST-style folders (see idx.h).
#include "tools/idx.h"

#include <zlib.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <memory>

#include "core/error.h"

namespace facetrain {
namespace fs = std::filesystem;

IdxArray read_idx(const std::string& path) {
  FT_USER_CHECK(fs::is_regular_file(path), "IDX file " << path << " does not exist");
  std::unique_ptr<gzFile_s, int (*)(gzFile)> file(gzopen(path.c_str(), "rb"), &gzclose);
  FT_USER_CHECK(file, "cannot open IDX file " << path);
  gzbuffer(file.get(), 1 << 20);
  auto read_exact = [&](void* dst, size_t n) -> size_t {
    size_t done = 0;
    while (done < n) {
      const unsigned chunk = static_cast<unsigned>(std::min<size_t>(n - done, 1u << 30));
      const int got = gzread(file.get(), static_cast<char*>(dst) + done, chunk);
      if (got < 0) {
        int err = 0;
        const char* msg = gzerror(file.get(), &err);
        throw UserError(path + ": corrupt gzip data (" + msg + ")");
      }
      if (got == 0) break;
      done += static_cast<size_t>(got);
    }
    return done;
  };
  uint8_t magic[4];
  FT_USER_CHECK(read_exact(magic, 4) == 4 && magic[0] == 0 && magic[1] == 0,
                path << " is not an IDX file (bad magic number)");
  FT_USER_CHECK(magic[2] == 0x08,
                path << ": IDX element type 0x" << std::hex << int(magic[2]) << " is not unsigned byte (0x08)");
  const int ndims = magic[3];
  FT_USER_CHECK(ndims >= 1 && ndims <= 4, path << ": IDX with " << ndims << " dimensions is not supported");
  IdxArray array;
  int64_t total = 1;
  for (int d = 0; d < ndims; ++d) {
    uint8_t be[4];
    FT_USER_CHECK(read_exact(be, 4) == 4, path << ": truncated IDX header");
    const int64_t size = (int64_t(be[0]) << 24) | (int64_t(be[1]) << 16) | (int64_t(be[2]) << 8) | int64_t(be[3]);
    array.dims.push_back(size);
    total *= size;
  }
  array.data.resize(static_cast<size_t>(total));
  const size_t got = read_exact(array.data.data(), array.data.size());
  FT_USER_CHECK(got == array.data.size(),
                path << ": truncated IDX data (header promises " << total << " bytes, file holds " << got << ")");
  return array;
}

IdxFiles find_idx_files(const std::string& dir, const std::string& what) {
  FT_USER_CHECK(fs::is_directory(dir), what << " " << dir << ": folder does not exist");
  auto find = [&](const std::string& prefix, const std::string& kind, const std::string& idx) {
    const std::string names[] = {prefix + "-" + kind + "-" + idx + "-ubyte",
                                 prefix + "-" + kind + "." + idx + "-ubyte"};
    for (const auto& name : names) {
      for (const char* suffix : {".gz", ""}) {
        const fs::path p = fs::path(dir) / (name + suffix);
        if (fs::is_regular_file(p)) return p.string();
      }
    }
    throw UserError(what + " " + dir + ": no " + names[0] + ".gz (or " + names[0] +
                    ") — an IDX folder holds train-* and t10k-* image and label files");
  };
  IdxFiles files;
  files.train_images = find("train", "images", "idx3");
  files.train_labels = find("train", "labels", "idx1");
  files.test_images = find("t10k", "images", "idx3");
  files.test_labels = find("t10k", "labels", "idx1");
  return files;
}

std::vector<std::string> idx_class_names(const std::string& kind, const std::string& dir) {
  std::string resolved = kind;
  if (kind == "auto") {
    std::string lower = fs::absolute(dir).lexically_normal().string();
    std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
    resolved = lower.find("fashion") != std::string::npos ? "fashion" : "digits";
  }
  if (resolved == "fashion") {
    return {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"};
  }
  FT_USER_CHECK(resolved == "digits", "IDX class names '" << kind << "' are not auto, fashion or digits");
  return {"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"};
}

}  // namespace facetrain
