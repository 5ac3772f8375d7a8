// `facetrain synth`: a procedural face-like data set drawn with OpenCV for tests, demos and scale benchmarks.
// Each image is a pure function of (seed, index, size): a face ellipse with random skin tone, hair, eyes,
// brows, nose and a mouth that smiles or not, glasses or none, under a random pose (rotation, scale,
// translation), background colour, shading, blur and Gaussian noise. Both attributes are drawn for every
// image and stored CelebA-style ("Smiling", "Eyeglasses"); the task picks which one is the label.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include "datastore/store.h"

namespace facetrain {

enum class SynthTask { kSmiling, kGlasses };
// "smiling" | "glasses"; throws UserError naming `what` otherwise.
SynthTask parse_synth_task(const std::string& name, const std::string& what);

struct SynthFace {
  bool smiling = false;
  bool glasses = false;
  Split split = Split::kTrain;
};

// Draws image `index` of the data set `seed` into out (size x size x 3, RGB). The attributes come from
// the image's own random stream, the split from a separate stream (uniform u: u < test -> test,
// u < test + val -> val, else train), so changing the fractions never changes a picture.
SynthFace render_synth_face(uint64_t seed, int64_t index, int size, double val_fraction, double test_fraction,
                            uint8_t* out);

// The data set's bounds; the launcher checks the options against them.
constexpr int64_t kMaxSynthCount = 20'000'000;
constexpr int kMinSynthSize = 16, kMaxSynthSize = 512;

// Options as the launcher checked them: an output, count in [1, kMaxSynthCount], size in [kMinSynthSize,
// kMaxSynthSize], fractions >= 0 leaving a train split, threads >= 0 (run_synth's FT_CHECKs guard these).
struct SynthOptions {
  std::string output;
  int64_t count = 0;
  int size = 64;
  uint64_t seed = 0;
  SynthTask task = SynthTask::kSmiling;
  double val_fraction = 0.1, test_fraction = 0.1;
  int threads = 0;  // 0: all cores; the output is identical for any value
  bool overwrite = false;
  bool quiet = false;
  const std::atomic<bool>* stop = nullptr;
};

struct SynthSummary {
  std::string output;
  int64_t count = 0;
  std::vector<std::string> class_names;
  std::vector<std::vector<int64_t>> counts;  // [class][split]
  double seconds = 0;
};

// Writes the whole data set through StoreWriter. Throws UserError for an existing output without overwrite.
SynthSummary run_synth(const SynthOptions& options);

}  // namespace facetrain
