// IDX files (LeCun's MNIST format, also Fashion-MNIST), plain or gzip'd: reading them with zlib, and
// locating the train-/t10k- image and label files of a data set folder such as Debian's
// /usr/share/datasets/fashion-mnist.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace facetrain {

// An unsigned-byte IDX array: dims (e.g. {60000, 28, 28}) and the data, row-major.
struct IdxArray {
  std::vector<int64_t> dims;
  std::vector<uint8_t> data;
};

// Reads an IDX file of type 0x08 (unsigned byte), gzip'd or not (zlib's gzread passes plain files through).
// Throws UserError naming the file when it is missing, not IDX, of another element type, or truncated.
IdxArray read_idx(const std::string& path);

struct IdxFiles {
  std::string train_images, train_labels, test_images, test_labels;
};
// Finds {train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz] (also the "images.idx3-ubyte" spelling) in dir.
// Throws UserError starting with `what` (e.g. the flag that gave dir) and naming the folder and the missing file.
IdxFiles find_idx_files(const std::string& dir, const std::string& what);

// Class names for IDX labels: "fashion" -> Fashion-MNIST's ten (T-shirt/top, Trouser, ...), "digits" ->
// "0".."9", "auto" -> fashion when the folder name contains "fashion", else digits. UserError for another kind.
std::vector<std::string> idx_class_names(const std::string& kind, const std::string& dir);

}  // namespace facetrain
