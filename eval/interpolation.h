// Latent-space helpers of `eval samples`: linear and spherical interpolation between latent vectors (rows
// of an interpolation grid), turning generator outputs into the pixels a classifier was trained on, and the
// class histogram of classified samples with its entropy.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "datastore/loader.h"

namespace facetrain {

// (1 - t) a + t b.
torch::Tensor lerp_latent(const torch::Tensor& a, const torch::Tensor& b, double t);
// Spherical interpolation (Shoemake; White 2016, "Sampling Generative Networks"): moves along the great
// circle between the directions of a and b, with the norm interpolated linearly. Falls back to linear
// interpolation when a and b are (anti)parallel within 1e-6 rad. t = 0 gives a, t = 1 gives b.
torch::Tensor slerp_latent(const torch::Tensor& a, const torch::Tensor& b, double t);

// Rows of an interpolation grid: starts (R x Z) to ends (R x Z) in `steps` (>= 2) evenly spaced t from 0
// to 1 -> (R * steps) x Z, row-major (row r holds starts[r] ... ends[r]).
torch::Tensor interpolation_latents(const torch::Tensor& starts, const torch::Tensor& ends, int64_t steps,
                                    bool spherical);

// Generator outputs in [-1, 1] (N x C x H x W) as a classifier's input: quantized to the 8-bit pixels a
// store holds (as the sample grids are written), then normalized as ShardLoader does for `normalization`
// with `store`'s train statistics. Throws UserError naming `store_name` when kMeanStd is asked of a store
// without them.
torch::Tensor generated_to_classifier_input(const torch::Tensor& images, const StoreInfo& store,
                                            Normalization normalization, const std::string& store_name = "store");

struct ClassHistogram {
  std::vector<std::string> class_names;
  std::vector<int64_t> counts;
  int64_t total = 0;
  double entropy_bits = 0;      // -sum p log2 p over classes with p > 0
  double max_entropy_bits = 0;  // log2(classes): every class equally often
};

// Counts predicted classes (0 <= predicted[i] < class_names.size()) and the entropy of their distribution.
ClassHistogram class_histogram(const std::vector<int64_t>& predicted, const std::vector<std::string>& class_names);
nlohmann::json class_histogram_json(const ClassHistogram& histogram);

}  // namespace facetrain
