// Which store images an eval command works on: a whole split, or a selection by indices, by a mined.csv or
// the first `count` of a split. Also reads the "index" column of CSVs that `eval mine` writes (a VAE's
// fine-tuning subset is such a file).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "datastore/store.h"

namespace facetrain {

// The store indices `split` names: "all" (every image) or "train" | "val" | "test" (ascending). Throws
// UserError starting with `what` (the flag or field that gave `split`) and naming the store when the
// selection is empty (e.g. a store without a test split).
std::vector<int64_t> select_store_indices(const StoreReader& store, const std::string& split,
                                          const std::string& what = "split");

// Exactly one source of images; `count` caps it. Indices are store indices (as predictions.csv and mined.csv
// of the other eval commands list them), kept in the order given. The launcher checks the combination first
// (indices or mined, not both; no explicit count with indices; count >= 1).
struct ImageSelection {
  std::string indices;  // "0,5,9"
  std::string mined;    // a CSV with a header naming an "index" column (eval mine's mined.csv)
  std::string split;    // with neither of the above, the first `count` images of this split
  int64_t count = 0;    // how many (> 0); with `mined` the first `count` rows; not with `indices`
  bool count_given = false;
  // How errors name the three sources (the launcher passes its flags).
  std::string indices_name = "indices", mined_name = "mined", split_name = "split";
};

// Throws UserError naming the source or file: a malformed index, an index outside the store, a CSV without
// an "index" column, or an empty selection.
std::vector<int64_t> select_images(const StoreReader& store, const ImageSelection& selection);

// Store indices from a CSV with a header line naming an "index" column (RFC 4180 quoting allowed in any field).
// `what` (the flag or config field) starts every error line.
std::vector<int64_t> read_index_column(const std::string& csv_path, const std::string& what = "index CSV");

// What a visual command (eval attention, eval morph) draws: images of a store chosen by `selection`, run
// through the model in `checkpoint` (with `model_config` for a .safetensors file), written into `output`,
// upscaled by `scale` (0: the smallest factor reaching 128 px on the longer side; the launcher checks
// [0, kMaxDisplayScale]).
struct VisualRequest {
  std::string checkpoint, model_config, store, output;
  std::string weights = "raw";  // raw | ema (models/checkpoint.h parse_model_weights)
  ImageSelection selection;
  int64_t scale = 0;
  // How errors name the checkpoint, the store and the weights (the launcher passes its flags).
  std::string checkpoint_name = "checkpoint", store_name = "store", weights_name = "weights";
};

// A VisualRequest whose selection defaults to the first `count` images of the test split.
inline VisualRequest visual_request(int64_t count) {
  VisualRequest v;
  v.selection.split = "test";
  v.selection.count = count;
  return v;
}

// The integer display upscale of `requested` (in [0, kMaxDisplayScale]; 0: automatic) for images of this size.
constexpr int64_t kMaxDisplayScale = 64;
int display_scale(int64_t requested, int height, int width);

}  // namespace facetrain
