// Mining a store with a classifier (seed 004: keep CelebA images whose "is the person" probability is at
// least 0.995): the threshold rule and ordering of hits, mined.csv, the contact sheet of the hits and the
// subset store holding just the hits (same layout, so the VAE can fine-tune on it).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "datastore/store.h"

namespace facetrain {

struct MinedImage {
  int64_t index = 0;  // store index
  float score = 0;    // probability of the mined class
};

// Throws UserError starting with `what` (the flag or field that gave it) unless 0 < threshold <= 1.
void check_mining_threshold(double threshold, const std::string& what = "threshold");

// The images whose score is at least `threshold`, highest score first, equal scores by ascending store
// index (so the list is the same whatever order the scores arrive in). The comparison is made in float,
// the precision of the scores: a score equal to float(threshold) passes, and threshold 1 keeps exactly the
// scores that are 1.0f. scores[i] belongs to indices[i].
std::vector<MinedImage> select_hits(const std::vector<int64_t>& indices, const std::vector<float>& scores,
                                    double threshold);

// mined.csv: index,file_name,score[,identity] (identity when `identities` is non-empty, i.e. the store has
// CelebA identities), one row per hit in the given order; only the header when there are none.
std::string mined_csv(const std::vector<MinedImage>& hits, const std::vector<std::string>& filenames,
                      const std::vector<int32_t>& identities);

// The first `max_images` hits (in order) tiled into one PNG, `columns` per row (0: about square).
// Returns how many images it shows. Writes nothing and returns 0 when there are no hits.
int64_t write_contact_sheet(StoreReader& store, const std::vector<MinedImage>& hits, int64_t max_images, int columns,
                            const std::string& path);

// Writes a new store at `path` holding the hits' images, labels, file names, attributes and identities,
// in ascending store index, with the source store's layout. keep_splits false puts every hit in the train
// split (what fine-tuning reads); true keeps each image's split. Throws UserError (from StoreWriter) when
// path exists and overwrite is false. Returns the number of images written.
int64_t write_subset_store(StoreReader& store, const std::vector<MinedImage>& hits, const std::string& path,
                           bool keep_splits, bool overwrite);

}  // namespace facetrain
