// `facetrain bench loader FILE`: throughput of the data path for one rank, as a table of medians over
// repetitions: memcpy (the ceiling), raw uint8 reads (pread and H5Dread paths), normalized float batches,
// and batches with the full seed-003 augmentation. Timing lives here, never in tests.
#pragma once

#include <cstdint>
#include <string>

namespace facetrain {

struct LoaderBenchRequest {
  std::string file;  // the store to read (HDF5)
  std::string split = "train";
  int64_t batch = 256;              // batch size per rank
  int64_t threads = 1;              // loader worker threads (plus one I/O thread)
  int64_t prefetch = 4;             // prefetch depth in batches
  double seconds = 1;               // duration of one repetition
  int64_t repeats = 5;              // repetitions per row (the table shows their median)
  bool cold = false;                // skip reading the file once before timing
  bool no_simd = false;             // the portable scalar augmentation kernel instead of AVX2
  int64_t generate = 0;             // > 0: first write `file` as this many noise images when it does not exist
  int64_t size = 64, channels = 3;  // their shape
};

// One process: times raw reads, normalized and augmented batches beside memcpy and logs the table of medians.
// The launcher checks the request first: split train|val|test, batch, threads and repeats >= 1, seconds > 0,
// size >= 1 and channels 1 or 3 with generate.
void run_loader_bench(const LoaderBenchRequest& request);

}  // namespace facetrain
