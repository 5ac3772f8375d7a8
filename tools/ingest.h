// Ingest: raw images (image folders, CelebA, IDX) -> one HDF5 store (datastore/store.h), decoded and
// preprocessed on all cores, written in deterministic sample order. Unreadable or truncated images are
// skipped, counted and listed; user mistakes throw UserError naming the path or option.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

namespace facetrain {

// How run_ingest's UserErrors name the options only the source can judge (a folder that is not there, an
// attribute or class it lacks, fractions for a source with its own partition). The launcher passes its flags
// (--input, ...); the defaults name the IngestOptions fields.
struct IngestOptionNames {
  std::string input = "input", label_attribute = "label_attribute", classes = "classes";
  std::string val_fraction = "val_fraction", test_fraction = "test_fraction";
};

// The options as the launcher checked them (source folders|celeba|idx, input and output set, channels 0, 1
// or 3, height and width in [0, 8192], non-negative counts, fractions < 1 when set, no face crop or test
// fraction for idx, idx_classes auto|fashion|digits): run_ingest's FT_CHECKs guard these.
struct IngestOptions {
  std::string source;  // "folders" | "celeba" | "idx"
  std::string input, output;
  int height = 0, width = 0;  // 0: 64x64 for image sources, the native 28x28 for IDX
  int channels = 0;           // 0: 3 (RGB) for image sources, 1 for IDX
  bool face_crop = false;
  std::string face_cascade;                 // empty: opencv-data's haarcascade_frontalface_default.xml
  std::string label_attribute = "Smiling";  // celeba
  std::string idx_classes = "auto";         // idx: auto | fashion | digits
  // Seeded stratified fractions for sources without their own partition (folders in the class layout,
  // CelebA without list_eval_partition.txt; for IDX only val, carved from the train file). < 0: default
  // (0.1/0.1; IDX: val 0.1 of the train file). Setting one for a source that has its own partition is a UserError.
  double val_fraction = -1, test_fraction = -1;
  uint64_t seed = 0;
  int threads = 0;  // 0: all cores
  bool overwrite = false;
  int64_t limit = 0;                        // > 0: an evenly spaced subsample of this many (see apply_limit)
  std::string classes;                      // "": all; else the classes to keep, in order (see select_classes)
  int64_t train_limit = 0;                  // > 0: keep this many train images, val and test whole
  bool quiet = false;                       // no progress lines or summary
  const std::atomic<bool>* stop = nullptr;  // set: stop between windows, remove the partial output
  IngestOptionNames names;
};

struct SkippedImage {
  std::string name;
  std::string reason;  // "truncated", "unreadable", "missing", "empty"
};

struct IngestSummary {
  std::string output;
  int height = 0, width = 0, channels = 0;
  std::vector<std::string> class_names;
  std::string partition;  // where splits came from
  int64_t listed = 0;     // samples considered (after the limit)
  int64_t written = 0;
  std::vector<std::vector<int64_t>> counts;  // [class][split] written
  int64_t skipped = 0;
  std::vector<SkippedImage> skipped_examples;  // the first kMaxSkippedListed, in sample order
  int64_t faces_not_found = 0;                 // face crop fell back to a center crop
  double seconds = 0;
  static constexpr size_t kMaxSkippedListed = 20;
};

// Runs a whole ingest. Throws UserError for user mistakes (before any output is created where possible): a
// source that is missing or malformed, named by its path or by `options.names`.
IngestSummary run_ingest(const IngestOptions& options);

// The summary table printed at the end of `facetrain ingest`.
std::string format_ingest_summary(const IngestSummary& summary);

}  // namespace facetrain
