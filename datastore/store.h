// The facetrain image store: one HDF5 file holding images (uint8 NxHxWxC), labels, splits, file names,
// class names, CelebA attributes/identities and train-split statistics. Layout: datastore/README.md.
// StoreWriter builds a file under a temporary name and renames it only when complete; StoreReader reads it.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/data_description.h"

namespace facetrain {

enum class Split : uint8_t { kTrain = 0, kVal = 1, kTest = 2 };
const char* split_name(Split split);
// "train" | "val" | "test"; throws UserError naming `what` (the flag or field that gave it) otherwise.
Split parse_split(const std::string& name, const std::string& what);

// StoreInfo (the store's shape, classes and train statistics) lives in core/data_description.h.

// Read access. Not thread-safe (HDF5 serial is not): use one StoreReader per thread.
class StoreReader {
 public:
  // Throws UserError naming the path when it is missing or not a facetrain store.
  explicit StoreReader(const std::string& path);
  ~StoreReader();
  StoreReader(const StoreReader&) = delete;
  StoreReader& operator=(const StoreReader&) = delete;

  const std::string& path() const;
  const StoreInfo& info() const;
  int64_t image_bytes() const;   // H*W*C
  int64_t chunk_images() const;  // images per HDF5 chunk of /images

  std::vector<int64_t> labels() const;                    // N
  std::vector<uint8_t> splits() const;                    // N, values of Split
  std::vector<int64_t> split_indices(Split split) const;  // ascending store indices
  std::vector<std::string> filenames() const;             // N
  std::vector<int32_t> identities() const;                // N, empty when absent
  std::vector<int8_t> attributes() const;                 // N x attribute_names.size(), +1/-1, empty when absent

  // Uncompressed stores (what StoreWriter writes) are read with pread at the chunk addresses HDF5 reports
  // at open, outside HDF5's global lock; otherwise, or after set_direct_reads(false), through H5Dread.
  bool direct_reads() const;
  void set_direct_reads(bool enabled);  // enabling is a no-op when the store does not allow it

  // Copies images [begin, end) into out (row-major N x H x W x C uint8).
  void read_range(int64_t begin, int64_t end, uint8_t* out);
  // Copies images[indices[k]] into out + k*image_bytes(), for any order of indices (duplicates allowed).
  // Reads in ascending store order and merges neighbours into one read.
  void read_images(const int64_t* indices, int64_t count, uint8_t* out);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

struct StoreLayout {
  int height = 0, width = 0, channels = 3;
  std::vector<std::string> class_names;
  std::string label_source;
  std::vector<std::string> attribute_names;  // non-empty: attributes are written per image
  bool has_identities = false;
};

// The layout of an existing store, for writing another one like it (e.g. a mined subset).
StoreLayout layout_of(const StoreInfo& info);

// Appends images one by one (in the final sample order) and writes statistics on finish().
// Writes to "<path>.partial" and renames to path in finish(); a StoreWriter destroyed without finish()
// removes the partial file. Not thread-safe.
class StoreWriter {
 public:
  // Throws UserError if path exists and overwrite is false.
  StoreWriter(const std::string& path, const StoreLayout& layout, bool overwrite);
  ~StoreWriter();
  StoreWriter(const StoreWriter&) = delete;
  StoreWriter& operator=(const StoreWriter&) = delete;

  // pixels: H*W*C uint8, HWC order, RGB channel order (grayscale: C = 1).
  // attributes: attribute_names.size() values (+1/-1) or empty; identity: -1 when absent.
  void append(const uint8_t* pixels, int64_t label, Split split, const std::string& filename,
              const std::vector<int8_t>& attributes = {}, int32_t identity = -1);
  int64_t count() const;
  // Writes mean/std (exact, streamed), class counts and weights, then renames into place.
  void finish();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace facetrain
