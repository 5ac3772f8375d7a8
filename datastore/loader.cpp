// ShardLoader: per-epoch permutation from (seed, epoch), the global batch cut into per-rank slices, and a
// bounded pipeline (one I/O thread, `threads` augment/normalize workers) that delivers float NCHW batches
// in order. eval_shard() cuts contiguous evaluation slices.
#include "datastore/loader.h"

#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <exception>
#include <map>
#include <mutex>
#include <numeric>
#include <thread>

#include "core/error.h"
#include "datastore/random.h"

namespace facetrain {

namespace {

// dst[c][p] = src[p*C + c] * scale[c] + shift[c]: HWC uint8 to CHW float. Written per channel count so
// the compiler sees constant strides and vectorizes the C = 3 deinterleave; x86-64's baseline (SSE2) does
// not vectorize it, so GCC also builds an AVX2 clone picked at load time: 9.0 -> 2.6 us per 64x64x3
// image measured here.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
__attribute__((target_clones("avx2", "default")))
#endif
void normalize_image(const uint8_t* src, float* dst, int64_t hw, int channels, const float* scale,
                     const float* shift) {
  if (channels == 1) {
    const float s = scale[0], b = shift[0];
    for (int64_t p = 0; p < hw; ++p) dst[p] = static_cast<float>(src[p]) * s + b;
  } else if (channels == 3) {
    const float s0 = scale[0], s1 = scale[1], s2 = scale[2], b0 = shift[0], b1 = shift[1], b2 = shift[2];
    float* __restrict d0 = dst;
    float* __restrict d1 = dst + hw;
    float* __restrict d2 = dst + 2 * hw;
    for (int64_t p = 0; p < hw; ++p) {
      d0[p] = static_cast<float>(src[3 * p]) * s0 + b0;
      d1[p] = static_cast<float>(src[3 * p + 1]) * s1 + b1;
      d2[p] = static_cast<float>(src[3 * p + 2]) * s2 + b2;
    }
  } else {
    for (int c = 0; c < channels; ++c)
      for (int64_t p = 0; p < hw; ++p)
        dst[c * hw + p] = static_cast<float>(src[p * channels + c]) * scale[c] + shift[c];
  }
}

// dst[c][p] = src[p*C + c]: HWC bytes to CHW bytes (LoaderOptions::uint8_images).
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
__attribute__((target_clones("avx2", "default")))
#endif
void planar_image(const uint8_t* src, uint8_t* dst, int64_t hw, int channels) {
  if (channels == 1) {
    std::memcpy(dst, src, static_cast<size_t>(hw));
    return;
  }
  for (int c = 0; c < channels; ++c)
    for (int64_t p = 0; p < hw; ++p) dst[c * hw + p] = src[p * channels + c];
}

// Fisher-Yates over [first, last) with our own draws (std::shuffle's output differs between libraries).
void shuffle_range(int64_t* first, int64_t* last, SplitMix64& rng) {
  for (int64_t n = last - first; n > 1; --n) std::swap(first[n - 1], first[rng.below(static_cast<uint64_t>(n))]);
}

}  // namespace

struct ShardLoader::Impl {
  LoaderOptions opt;
  std::string path;
  std::unique_ptr<StoreReader> reader;  // owned by the I/O thread while the pipeline runs
  std::vector<int64_t> items;           // store indices of the split/subset
  std::vector<int64_t> labels;          // all labels of the store
  int64_t image_bytes = 0, chunk_images = 0, batches = 0;
  std::vector<float> scale, shift;  // normalization: x * scale[c] + shift[c]

  // Epoch state (written by start_epoch while no thread runs).
  int64_t epoch = 0, end_batch = 0;
  int64_t offset = 0;          // images of the epoch's order consumed (all ranks) before batch 0 of this delivery
  std::vector<int64_t> order;  // positions into items, this epoch
  bool started = false;

  // Pipeline, guarded by mu.
  struct Job {
    int64_t batch = 0;
    std::vector<int64_t> indices;
    uint8_t* raw = nullptr;
  };
  std::mutex mu;
  std::condition_variable cv_io, cv_work, cv_ready;
  bool stop = false, io_done = false;
  std::exception_ptr error;
  int64_t next_read = 0, next_deliver = 0;
  std::deque<Job> work;
  std::map<int64_t, Batch> ready;
  std::vector<std::vector<uint8_t>> raw_buffers;
  std::vector<uint8_t*> free_raw;
  std::vector<std::thread> threads;
  double wait_seconds = 0;

  int64_t batch_size_of(int64_t b) const {
    const int64_t n = static_cast<int64_t>(items.size());
    return std::min(opt.batch_size, n - b * opt.batch_size);  // short last batch only without drop_last
  }

  std::vector<int64_t> epoch_order(int64_t e) const {
    const int64_t n = static_cast<int64_t>(items.size());
    std::vector<int64_t> pos(static_cast<size_t>(n));
    std::iota(pos.begin(), pos.end(), 0);
    if (!opt.shuffle) return pos;
    if (!opt.chunk_shuffle) {
      SplitMix64 rng(mix_seed(opt.seed, static_cast<uint64_t>(e), 0, RandomDomain::kEpochOrder));
      shuffle_range(pos.data(), pos.data() + n, rng);
      return pos;
    }
    // Chunk-aware: group positions by HDF5 chunk, shuffle the groups, then shuffle positions within
    // windows of kChunkShuffleWindow consecutive groups. A batch then touches about B/chunk + 2 windows'
    // worth of chunks, read as long runs.
    std::stable_sort(pos.begin(), pos.end(),
                     [&](int64_t a, int64_t b) { return items[a] / chunk_images < items[b] / chunk_images; });
    std::vector<std::pair<int64_t, int64_t>> groups;  // [begin, end) into pos
    for (int64_t a = 0; a < n;) {
      int64_t b = a + 1;
      while (b < n && items[pos[b]] / chunk_images == items[pos[a]] / chunk_images) ++b;
      groups.emplace_back(a, b);
      a = b;
    }
    SplitMix64 rng(mix_seed(opt.seed, static_cast<uint64_t>(e), 0, RandomDomain::kChunkOrder));
    for (int64_t g = static_cast<int64_t>(groups.size()); g > 1; --g)
      std::swap(groups[g - 1], groups[rng.below(static_cast<uint64_t>(g))]);
    std::vector<int64_t> out;
    out.reserve(static_cast<size_t>(n));
    for (size_t g = 0; g < groups.size(); g += kChunkShuffleWindow) {
      const auto window_begin = static_cast<int64_t>(out.size());
      for (size_t k = g; k < std::min(groups.size(), g + kChunkShuffleWindow); ++k)
        out.insert(out.end(), pos.begin() + groups[k].first, pos.begin() + groups[k].second);
      shuffle_range(out.data() + window_begin, out.data() + out.size(), rng);
    }
    return out;
  }

  void indices_of(const std::vector<int64_t>& ord, int64_t b, std::vector<int64_t>* out) const {
    const int64_t bs = batch_size_of(b);
    const int64_t first =
        offset + b * opt.world_size * opt.batch_size + static_cast<int64_t>(opt.rank) * opt.batch_size;
    out->resize(static_cast<size_t>(bs));
    for (int64_t k = 0; k < bs; ++k) (*out)[k] = items[ord[first + k]];
  }

  // Output tensors are recycled once the consumer has dropped them: a fresh 12 MB tensor per batch costs
  // a page fault per 4 KiB (about 3 us per 64x64x3 image here), more than normalizing it.
  std::vector<torch::Tensor> tensor_pool;  // guarded by mu

  torch::Tensor take_images_tensor(int64_t n, int c, int h, int w) {
    if (opt.pinned_batches) {  // the CUDA host allocator's cache, whose reuse waits for the copies (loader.h)
      return torch::empty(
          {n, c, h, w},
          torch::TensorOptions().dtype(opt.uint8_images ? torch::kUInt8 : torch::kFloat32).pinned_memory(true));
    }
    {
      std::lock_guard<std::mutex> lock(mu);
      for (auto& t : tensor_pool) {
        // use_count 1: only the pool holds it (no Batch, no view): nobody can take a new reference.
        if (t.use_count() == 1 && t.storage().use_count() == 1 && t.size(0) == n) return t;
      }
    }
    torch::Tensor t = torch::empty({n, c, h, w}, opt.uint8_images ? torch::kUInt8 : torch::kFloat32);
    std::lock_guard<std::mutex> lock(mu);
    if (static_cast<int>(tensor_pool.size()) < opt.prefetch_batches + opt.threads + 2) tensor_pool.push_back(t);
    return t;
  }

  void fail(std::exception_ptr e) {
    std::lock_guard<std::mutex> lock(mu);
    if (!error) error = e;
    stop = true;
    cv_io.notify_all();
    cv_work.notify_all();
    cv_ready.notify_all();
  }

  void io_loop() {
    try {
      for (;;) {
        Job job;
        {
          std::unique_lock<std::mutex> lock(mu);
          cv_io.wait(lock, [&] {
            return stop || next_read >= end_batch ||
                   (next_read - next_deliver < opt.prefetch_batches && !free_raw.empty());
          });
          if (stop) return;
          if (next_read >= end_batch) {
            io_done = true;
            cv_work.notify_all();
            return;
          }
          job.batch = next_read++;
          job.raw = free_raw.back();
          free_raw.pop_back();
        }
        indices_of(order, job.batch, &job.indices);
        reader->read_images(job.indices.data(), static_cast<int64_t>(job.indices.size()), job.raw);
        std::lock_guard<std::mutex> lock(mu);
        work.push_back(std::move(job));
        cv_work.notify_one();
      }
    } catch (...) {
      fail(std::current_exception());
    }
  }

  void worker_loop() {
    try {
      const StoreInfo& info = reader->info();
      const int h = info.height, w = info.width, c = info.channels;
      const bool augment = opt.augment.enabled();
      for (;;) {
        Job job;
        {
          std::unique_lock<std::mutex> lock(mu);
          cv_work.wait(lock, [&] { return stop || !work.empty() || io_done; });
          if (stop || work.empty()) return;
          job = std::move(work.front());
          work.pop_front();
        }
        const auto n = static_cast<int64_t>(job.indices.size());
        Batch batch;
        batch.images = take_images_tensor(n, c, h, w);
        batch.labels = torch::empty({n}, torch::TensorOptions().dtype(torch::kInt64).pinned_memory(opt.pinned_batches));
        batch.indices = torch::empty({n}, torch::kInt64);
        batch.epoch = epoch;
        batch.batch_in_epoch = job.batch;
        float* out = opt.uint8_images ? nullptr : batch.images.data_ptr<float>();
        uint8_t* out8 = opt.uint8_images ? batch.images.data_ptr<uint8_t>() : nullptr;
        int64_t* lab = batch.labels.data_ptr<int64_t>();
        int64_t* idx = batch.indices.data_ptr<int64_t>();
        for (int64_t k = 0; k < n; ++k) {
          const uint8_t* px = job.raw + k * image_bytes;
          const AugmentParams p =
              augment ? draw_augment_params(opt.augment, h, w, opt.seed, epoch, job.indices[k]) : AugmentParams{};
          const bool transform = p.is_affine() || p.flip_horizontal || p.flip_vertical || p.grayscale;
          if (out8 != nullptr) {
            uint8_t* dst = out8 + k * image_bytes;
            if (transform) {
              augment_to_uint8(px, h, w, c, p, opt.augment.fill_mode, opt.augment.cval, dst);
            } else {
              planar_image(px, dst, static_cast<int64_t>(h) * w, c);
            }
          } else if (transform) {
            augment_normalize(px, h, w, c, p, opt.augment.fill_mode, opt.augment.cval, scale.data(), shift.data(),
                              out + k * image_bytes);
          } else {
            normalize_image(px, out + k * image_bytes, static_cast<int64_t>(h) * w, c, scale.data(), shift.data());
          }
          lab[k] = labels[job.indices[k]];
          idx[k] = job.indices[k];
        }
        std::lock_guard<std::mutex> lock(mu);
        free_raw.push_back(job.raw);
        ready.emplace(job.batch, std::move(batch));
        cv_io.notify_one();
        cv_ready.notify_all();
      }
    } catch (...) {
      fail(std::current_exception());
    }
  }

  void stop_threads() {
    {
      std::lock_guard<std::mutex> lock(mu);
      stop = true;
    }
    cv_io.notify_all();
    cv_work.notify_all();
    cv_ready.notify_all();
    for (auto& t : threads) t.join();
    threads.clear();
  }

  void start(int64_t e, int64_t first_batch, int64_t first_image = 0) {
    stop_threads();
    order = epoch_order(e);
    epoch = e;
    offset = first_image;
    end_batch = first_image == 0
                    ? batches
                    : (static_cast<int64_t>(items.size()) - first_image) / (opt.world_size * opt.batch_size);
    stop = io_done = false;
    error = nullptr;
    next_read = next_deliver = first_batch;
    work.clear();
    ready.clear();
    free_raw.clear();
    for (auto& buf : raw_buffers) free_raw.push_back(buf.data());
    started = true;
    threads.emplace_back([this] { io_loop(); });
    for (int t = 0; t < opt.threads; ++t) threads.emplace_back([this] { worker_loop(); });
  }
};

ShardLoader::ShardLoader(const std::string& store_path, const LoaderOptions& options)
    : impl_(std::make_unique<Impl>()) {
  auto& m = *impl_;
  m.opt = options;
  m.path = store_path;
  const LoaderOptions& o = m.opt;
  FT_USER_CHECK(o.batch_size >= 1, "batch_size must be at least 1, got " << o.batch_size);
  FT_USER_CHECK(o.world_size >= 1 && o.rank >= 0 && o.rank < o.world_size,
                "rank " << o.rank << " outside world of " << o.world_size);
  FT_USER_CHECK(o.threads >= 1, "loader threads must be at least 1, got " << o.threads);
  FT_USER_CHECK(o.prefetch_batches >= 1, "prefetch_batches must be at least 1, got " << o.prefetch_batches);
  FT_USER_CHECK(o.drop_last || o.world_size == 1,
                "drop_last = false needs world_size 1 (ranks must run equal batch counts; evaluate with eval_shard)");
  o.augment.validate("augment");
  m.reader = std::make_unique<StoreReader>(store_path);
  const StoreInfo& info = m.reader->info();
  m.image_bytes = m.reader->image_bytes();
  m.chunk_images = m.reader->chunk_images();
  m.labels = m.reader->labels();
  if (o.subset.empty()) {
    m.items = m.reader->split_indices(o.split);
    FT_USER_CHECK(!m.items.empty(),
                  "store " << store_path << " has no images in split '" << split_name(o.split) << "'");
  } else {
    for (int64_t i : o.subset)
      FT_USER_CHECK(i >= 0 && i < info.count,
                    "subset index " << i << " outside store " << store_path << " of " << info.count << " images");
    m.items = o.subset;
  }
  const int64_t n = static_cast<int64_t>(m.items.size());
  const int64_t global = o.batch_size * o.world_size;
  if (o.drop_last) {
    m.batches = n / global;
    FT_USER_CHECK(
        m.batches >= 1,
        "store " << store_path << ": " << n << " images in "
                 << (o.subset.empty() ? "split '" + std::string(split_name(o.split)) + "'" : std::string("the subset"))
                 << " are fewer than one global batch (" << o.world_size << " ranks x batch_size " << o.batch_size
                 << " = " << global << "); lower batch_size");
  } else {
    m.batches = (n + o.batch_size - 1) / o.batch_size;
  }

  normalization_affine(o.normalization, info, info.channels, &m.scale, &m.shift, "store " + store_path);
  m.raw_buffers.resize(static_cast<size_t>(o.prefetch_batches));
  for (auto& buf : m.raw_buffers) buf.resize(static_cast<size_t>(o.batch_size * m.image_bytes));
}

ShardLoader::~ShardLoader() {
  if (impl_) impl_->stop_threads();
}

const StoreInfo& ShardLoader::info() const { return impl_->reader->info(); }
int64_t ShardLoader::batches_per_epoch() const { return impl_->batches; }
int64_t ShardLoader::source_images() const { return static_cast<int64_t>(impl_->items.size()); }

int64_t ShardLoader::images_per_epoch() const {
  const auto& o = impl_->opt;
  return o.drop_last ? impl_->batches * o.world_size * o.batch_size : static_cast<int64_t>(impl_->items.size());
}

std::vector<int64_t> ShardLoader::batch_indices(int64_t epoch, int64_t batch) const {
  FT_CHECK(batch >= 0 && batch < impl_->batches, "batch " << batch << " outside [0, " << impl_->batches << ")");
  std::vector<int64_t> out;
  impl_->indices_of(impl_->epoch_order(epoch), batch, &out);
  return out;
}

void ShardLoader::start_epoch(int64_t epoch, int64_t first_batch) {
  FT_CHECK(epoch >= 0 && first_batch >= 0 && first_batch <= impl_->batches,
           "start_epoch(" << epoch << ", " << first_batch << ") with " << impl_->batches << " batches per epoch");
  impl_->start(epoch, first_batch);
}

void ShardLoader::start_epoch_at_image(int64_t epoch, int64_t images_done) {
  const int64_t n = static_cast<int64_t>(impl_->items.size());
  FT_CHECK(impl_->opt.drop_last, "start_epoch_at_image: training loaders (drop_last) only");
  FT_CHECK(epoch >= 0 && images_done >= 0 && images_done <= n,
           "start_epoch_at_image(" << epoch << ", " << images_done << ") with " << n << " images per epoch");
  impl_->start(epoch, 0, images_done);
}

bool ShardLoader::next(Batch* batch) {
  auto& m = *impl_;
  if (!m.started) m.start(0, 0);
  std::unique_lock<std::mutex> lock(m.mu);
  auto ready_now = [&] { return m.error || m.next_deliver >= m.end_batch || m.ready.count(m.next_deliver) > 0; };
  if (!ready_now()) {
    const auto t0 = std::chrono::steady_clock::now();
    m.cv_ready.wait(lock, ready_now);
    m.wait_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }
  if (m.error) std::rethrow_exception(m.error);
  if (m.next_deliver >= m.end_batch) return false;
  auto it = m.ready.find(m.next_deliver);
  *batch = std::move(it->second);
  m.ready.erase(it);
  ++m.next_deliver;
  m.cv_io.notify_one();
  return true;
}

double ShardLoader::wait_seconds() const { return impl_->wait_seconds; }

void ShardLoader::input_affine(std::vector<float>* scale, std::vector<float>* shift) const {
  *scale = impl_->scale;
  *shift = impl_->shift;
}

std::vector<int64_t> eval_shard(const std::vector<int64_t>& indices, int rank, int world_size) {
  FT_CHECK(world_size >= 1 && rank >= 0 && rank < world_size, "rank " << rank << " outside world of " << world_size);
  const auto n = static_cast<int64_t>(indices.size());
  // Rank r gets [r*n/W, (r+1)*n/W): sizes floor(n/W) or ceil(n/W), in order, no padding.
  const int64_t begin = n * rank / world_size, end = n * (rank + 1) / world_size;
  return std::vector<int64_t>(indices.begin() + begin, indices.begin() + end);
}

void normalization_affine(Normalization normalization, const StoreInfo& store, int channels, std::vector<float>* scale,
                          std::vector<float>* shift, const std::string& source) {
  // torchvision's ImageNet statistics; a grayscale store gets their means.
  static const double kImageNetMean[3] = {0.485, 0.456, 0.406}, kImageNetStd[3] = {0.229, 0.224, 0.225};
  scale->assign(static_cast<size_t>(channels), 0);
  shift->assign(static_cast<size_t>(channels), 0);
  for (int ch = 0; ch < channels; ++ch) {
    double mean = 0, std = 1;
    switch (normalization) {
      case Normalization::kMeanStd:
        FT_USER_CHECK(static_cast<int>(store.mean.size()) == channels &&
                          static_cast<int>(store.std.size()) == channels && store.std[ch] > 0,
                      source << " has no usable train mean/std (empty or constant train split); set "
                                "data.normalization to unit, minus_one_one or imagenet");
        mean = store.mean[ch];
        std = store.std[ch];
        break;
      case Normalization::kMinusOneOne:
        mean = 0.5;
        std = 0.5;
        break;
      case Normalization::kUnit:
        mean = 0;
        std = 1;
        break;
      case Normalization::kImageNet:
        mean = channels == 3 ? kImageNetMean[ch] : (kImageNetMean[0] + kImageNetMean[1] + kImageNetMean[2]) / 3;
        std = channels == 3 ? kImageNetStd[ch] : (kImageNetStd[0] + kImageNetStd[1] + kImageNetStd[2]) / 3;
        break;
    }
    // (x/255 - mean) / std
    (*scale)[static_cast<size_t>(ch)] = static_cast<float>(1.0 / (255.0 * std));
    (*shift)[static_cast<size_t>(ch)] = static_cast<float>(-mean / std);
  }
}

LoaderOptions in_order_loader_options(std::vector<int64_t> subset, int64_t batch_size, Normalization normalization) {
  LoaderOptions options;
  options.subset = std::move(subset);
  options.batch_size = batch_size;
  options.shuffle = false;
  options.drop_last = false;
  options.normalization = normalization;
  return options;
}

}  // namespace facetrain
