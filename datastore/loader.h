// ShardLoader: delivers augmented, normalized float batches of one split of a store to one rank, with
// background threads prefetching ahead. Each epoch's order is a permutation seeded by (seed, epoch), the
// same on every rank; the global batch b holds perm[b*W*B, (b+1)*W*B) and rank r takes its r-th slice of
// B. Every rank therefore gets the same number of batches (no rank can run an extra step and hang a
// collective), and one process with batch W*B sees exactly the union of the ranks' batches.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "datastore/augment.h"
#include "datastore/store.h"

namespace facetrain {

// Normalization, parse_normalization and normalization_name: core/data_description.h.
// The per-channel affine map x * scale[c] + shift[c] from 8-bit pixels to the model's input. UserError naming
// `source` when kMeanStd finds no usable train statistics in `store`.
void normalization_affine(Normalization normalization, const StoreInfo& store, int channels, std::vector<float>* scale,
                          std::vector<float>* shift, const std::string& source);

struct LoaderOptions {
  Split split = Split::kTrain;
  int64_t batch_size = 64;  // per rank
  int rank = 0, world_size = 1;
  uint64_t seed = 0;
  bool shuffle = true;         // false: store order (evaluation)
  bool drop_last = true;       // false only with world_size == 1: last batch may be short
  bool chunk_shuffle = false;  // shuffle whole HDF5 chunks, then within a window of
                               // kChunkShuffleWindow chunks (faster reads, slightly less random)
  int threads = 1;             // decode/augment workers
  int prefetch_batches = 4;    // memory bound: at most this many ready batches
  Normalization normalization = Normalization::kMeanStd;
  AugmentOptions augment;
  std::vector<int64_t> subset;  // non-empty: use these store indices instead of the split's
  // Batches of uint8 images (augmented, rounded half up), not normalized: the consumer applies
  // input_affine() where the model is (data.normalize_on device: a quarter of the bytes to copy to a GPU,
  // and no float image ever written on the host).
  bool uint8_images = false;
  // Batches in page-locked host memory, so their copies to a GPU run asynchronously (non_blocking). Only with
  // a CUDA LibTorch. The loader's own reuse of batch tensors is then bypassed: LibTorch's CUDA host allocator
  // caches the blocks and hands one out again only once the copies that read it have finished.
  bool pinned_batches = false;
};

// Options for reading `subset` in the order given, in batches of `batch_size` (the last one may be short), with
// no augmentation: how evaluation and sample grids read images (one process; ranks pick their own subsets).
LoaderOptions in_order_loader_options(std::vector<int64_t> subset, int64_t batch_size, Normalization normalization);

struct Batch {
  torch::Tensor images;   // float32 N x C x H x W (uint8 with LoaderOptions::uint8_images)
  torch::Tensor labels;   // int64 N
  torch::Tensor indices;  // int64 N, store indices
  int64_t epoch = 0;
  int64_t batch_in_epoch = 0;
};

// Threading: one I/O thread reads each batch's images (sorted by store index, neighbours merged) into one
// of `prefetch_batches` raw buffers; `threads` workers augment and normalize whole batches; next() hands
// them out in batch order. At most `prefetch_batches` batches are between read and delivery, so memory is
// prefetch_batches * batch_size * (H*W*C bytes + 4*H*W*C bytes), whatever the data set size. Batches are
// identical for any `threads` (each image's draws depend on (seed, epoch, store index) only).
// A ShardLoader is used from one thread; destroying it mid-epoch stops and joins its threads.
class ShardLoader {
 public:
  static constexpr int kChunkShuffleWindow = 4;

  // Throws UserError for a missing store, an empty split/subset, or too few images for one batch per rank.
  ShardLoader(const std::string& store_path, const LoaderOptions& options);
  ~ShardLoader();
  ShardLoader(const ShardLoader&) = delete;
  ShardLoader& operator=(const ShardLoader&) = delete;

  const StoreInfo& info() const;
  int64_t batches_per_epoch() const;  // identical on every rank
  // Images delivered per epoch, all ranks together: batches_per_epoch * W * B with drop_last (the
  // remainder of the split/subset is skipped this epoch, a different one each epoch), else its full size.
  int64_t images_per_epoch() const;
  int64_t source_images() const;  // size of the split/subset
  // The store indices rank r gets in batch b of epoch e, in delivery order (pure; no I/O).
  std::vector<int64_t> batch_indices(int64_t epoch, int64_t batch) const;
  // Starts (or restarts) delivery at batch `first_batch` of `epoch` (resume mid-epoch). next() before
  // any start_epoch() starts epoch 0.
  void start_epoch(int64_t epoch, int64_t first_batch = 0);
  // Starts delivery after the first `images_done` images of epoch `epoch`'s order, counted over all ranks
  // (a resume on another number of ranks: the epoch's order and each image's augmentation depend only on
  // (seed, epoch, index), so the images left are exactly those not yet seen). Batches are numbered from 0
  // at that point; the epoch ends when fewer than world_size x batch_size images remain. drop_last only.
  void start_epoch_at_image(int64_t epoch, int64_t images_done);
  // Next batch of the current epoch; false once the epoch is exhausted. Blocks only when no batch is ready.
  // An error in a background thread (e.g. an unreadable store) is rethrown here.
  bool next(Batch* batch);
  double wait_seconds() const;  // total time next() spent blocked (data wait in the run summary)
  // The normalization as x * scale[c] + shift[c] per channel: what float batches have applied, and what the
  // consumer of uint8 batches applies.
  void input_affine(std::vector<float>* scale, std::vector<float>* shift) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The indices rank r evaluates: a contiguous, non-padded slice of `indices` (sizes differ by at most one),
// so every image is counted exactly once whatever the number of ranks.
std::vector<int64_t> eval_shard(const std::vector<int64_t>& indices, int rank, int world_size);

}  // namespace facetrain
