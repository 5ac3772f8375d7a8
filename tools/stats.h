// `facetrain stats`: what seed 000 computes by hand, read from a store — counts and percentages per class
// and split, 'balanced' class weights, image shape, per-channel mean/variance/std of the train split, and
// for CelebA-style stores the share of positives per attribute.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "datastore/store.h"

namespace facetrain {

struct StoreStats {
  std::string path;
  StoreInfo info;
  std::vector<std::vector<int64_t>> counts;  // [class][split], all images of the store
  std::vector<int64_t> class_totals;         // per class, all splits
  std::vector<double> variance;              // per channel, std^2 of the stored train statistics
  std::vector<double> attribute_positive;    // per attribute, fraction of +1 over all images
  int64_t identities = 0;                    // distinct identities (when present)
};

// Reads labels, splits and statistics of the store (one pass over the small per-image arrays; the
// per-channel mean/std are the writer's exact streamed train statistics). Throws UserError for a missing
// or foreign file.
StoreStats compute_store_stats(const std::string& path);

std::string format_stats_table(const StoreStats& stats);  // the readable table `facetrain stats` prints
std::string stats_json(const StoreStats& stats);          // the same, as one JSON object (--json)

}  // namespace facetrain
