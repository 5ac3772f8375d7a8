// `facetrain eval samples`: a DCGAN's sample grid and latent interpolation grids (rows from one random z to
// another, linear and spherical), and optionally the samples classified by a trained ViT: the histogram of
// predicted classes and its entropy (a mode-collapsed generator fills few classes). Ranks split the
// classification; every sample is counted once.
#pragma once

#include <cstdint>
#include <string>

#include "runtime/process_context.h"

namespace facetrain {

// As the launcher checked it: count, columns and batch > 0, interpolations >= 0, steps >= 2 with
// interpolations, a store and classify_count > 0 with a classifier, a store with a .safetensors DCGAN.
struct SamplesRequest {
  std::string checkpoint, model_config;       // the DCGAN (a .safetensors file needs its run config)
  std::string output;                         // samples.png, interpolations_*.png, class_histogram.json
  int64_t count = 64, columns = 8;            // the sample grid
  int64_t seed = 0;                           // of the latent vectors
  int64_t interpolations = 8, steps = 10;     // rows of the interpolation grids, images per row (endpoints included)
  std::string classifier, classifier_config;  // optional ViT for the class histogram
  std::string store;                          // the classifier's store; also fixes the image size
  int64_t classify_count = 1000;              // samples classified for the histogram
  int64_t batch = 256;                        // samples per forward pass on each rank
  // How errors name the DCGAN, the classifier and the store (the launcher passes its flags).
  std::string checkpoint_name = "checkpoint", classifier_name = "classifier", store_name = "store";
};

// (collective) every rank: setup and the setup agreement (bad input: UserError naming the file, or the input
// as the request names it, on every rank), classification on all ranks, files on rank 0.
void write_dcgan_samples(const SamplesRequest& request, ProcessContext& ctx);

}  // namespace facetrain
