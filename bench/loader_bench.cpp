// The data-path benchmark (see loader_bench.h).
#include "bench/loader_bench.h"

#include <sched.h>
#include <sys/resource.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <random>
#include <thread>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/log.h"
#include "core/stopwatch.h"
#include "datastore/augment.h"
#include "datastore/loader.h"
#include "datastore/random.h"
#include "datastore/store.h"

namespace facetrain {
namespace {

double cpu_seconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_utime.tv_sec + u.ru_stime.tv_sec + 1e-6 * (u.ru_utime.tv_usec + u.ru_stime.tv_usec);
}

int usable_cores() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) != 0) return static_cast<int>(std::thread::hardware_concurrency());
  return CPU_COUNT(&set);
}

struct Measurement {
  std::vector<double> rates;  // images/s per repetition
  double cpu_per_wall = 0;    // cores busy on average (all repetitions)
  double median() const { return facetrain::median(rates); }
};

// Runs `step` (which processes and returns some images) for `seconds`, `repeats` times, after one
// untimed warm-up repetition of a quarter of that.
Measurement measure(const std::function<int64_t()>& step, double seconds, int repeats) {
  Measurement m;
  auto run_for = [&](double s) {
    const auto t0 = Clock::now();
    int64_t images = 0;
    double elapsed = 0;
    do {
      images += step();
      elapsed = seconds_since(t0);
    } while (elapsed < s);
    return images / elapsed;
  };
  run_for(seconds / 4);
  const double cpu0 = cpu_seconds();
  const auto t0 = Clock::now();
  for (int r = 0; r < repeats; ++r) m.rates.push_back(run_for(seconds));
  m.cpu_per_wall = (cpu_seconds() - cpu0) / seconds_since(t0);
  return m;
}

// Writes a store of random-noise images (2 classes, 90% train) for benchmarking when no data is at hand.
void generate_noise_store(const std::string& path, int64_t count, int size, int channels) {
  StoreLayout layout;
  layout.height = layout.width = size;
  layout.channels = channels;
  layout.class_names = {"a", "b"};
  layout.label_source = "bench:noise";
  StoreWriter writer(path, layout, false);
  std::vector<uint8_t> img(static_cast<size_t>(size) * size * channels);
  SplitMix64 rng(12345);
  for (int64_t i = 0; i < count; ++i) {
    for (size_t p = 0; p < img.size(); p += 8) {
      const uint64_t v = rng.next();
      std::memcpy(img.data() + p, &v, std::min<size_t>(8, img.size() - p));
    }
    writer.append(img.data(), static_cast<int64_t>(i % 2), i % 10 == 9 ? Split::kVal : Split::kTrain,
                  "noise_" + std::to_string(i));
    if ((i + 1) % 50000 == 0) log("bench loader: generated " + std::to_string(i + 1) + " images");
  }
  writer.finish();
}

}  // namespace

void run_loader_bench(const LoaderBenchRequest& r) {
  const std::string& path = r.file;
  const int64_t batch = r.batch;
  const int threads = static_cast<int>(r.threads);
  const int prefetch = static_cast<int>(r.prefetch);
  const double seconds = r.seconds;
  const int repeats = static_cast<int>(r.repeats);
  // The request as the launcher checked it (loader_bench.h).
  const Split split = parse_split(r.split, "split");
  FT_CHECK(batch >= 1 && threads >= 1 && seconds > 0 && repeats >= 1,
           "batch " << batch << ", threads " << threads << ", seconds " << seconds << ", repeats " << repeats);
  const int64_t generate = r.generate;
  if (generate > 0 && !std::filesystem::exists(path)) {
    const int size = static_cast<int>(r.size), channels = static_cast<int>(r.channels);
    FT_CHECK(size >= 1 && (channels == 1 || channels == 3), "image shape " << size << "x" << size << "x" << channels);
    log("bench loader: writing " + std::to_string(generate) + " noise images to " + path);
    generate_noise_store(path, generate, size, channels);
  }
  torch::set_num_threads(1);  // the loader fills tensors itself; no intra-op work here
  if (r.no_simd) set_augment_simd(false);

  if (!r.cold) {
    // Every row should see the same (page-cached) file: read it once, sequentially.
    std::ifstream in(path, std::ios::binary);
    std::vector<char> block(8 << 20);
    while (in.read(block.data(), static_cast<std::streamsize>(block.size())) || in.gcount() > 0) {
    }
  }
  StoreReader reader(path);
  const StoreInfo info = reader.info();
  const int64_t bytes = reader.image_bytes();
  const std::vector<int64_t> items = reader.split_indices(split);
  FT_USER_CHECK(static_cast<int64_t>(items.size()) >= batch, path << ": split " << split_name(split) << " has "
                                                                  << items.size() << " images, fewer than --batch "
                                                                  << batch);
  char line[512];
  std::snprintf(
      line, sizeof line,
      "bench loader: %s, %lld %s images of %dx%dx%d (%lld per chunk), batch %lld, %d worker thread(s) + 1 I/O, "
      "prefetch %d, %d usable core(s), median of %d x %.2f s",
      path.c_str(), static_cast<long long>(items.size()), split_name(split), info.height, info.width, info.channels,
      static_cast<long long>(reader.chunk_images()), static_cast<long long>(batch), threads, prefetch, usable_cores(),
      repeats, seconds);
  log(line);

  struct Row {
    std::string name;
    Measurement m;
  };
  std::vector<Row> rows;

  // 1. memcpy from a buffer larger than the caches: the ceiling for anything that touches every byte.
  {
    const int64_t batch_bytes = batch * bytes;
    const int64_t slots = std::max<int64_t>(2, (256LL << 20) / batch_bytes);
    std::vector<uint8_t> src(static_cast<size_t>(slots * batch_bytes), 1), dst(static_cast<size_t>(batch_bytes));
    int64_t slot = 0;
    rows.push_back({"memcpy (ceiling)", measure(
                                            [&] {
                                              std::memcpy(dst.data(), src.data() + (slot++ % slots) * batch_bytes,
                                                          batch_bytes);
                                              return batch;
                                            },
                                            seconds, repeats)});
  }

  // 2. Raw uint8 reads of shuffled batches, in this thread, through both read paths.
  {
    std::vector<int64_t> order = items;
    SplitMix64 rng(7);
    for (int64_t n = static_cast<int64_t>(order.size()); n > 1; --n)
      std::swap(order[n - 1], order[rng.below(static_cast<uint64_t>(n))]);
    std::vector<uint8_t> out(static_cast<size_t>(batch * bytes));
    const int64_t batches = static_cast<int64_t>(order.size()) / batch;
    for (bool direct : {true, false}) {
      reader.set_direct_reads(direct);
      if (direct && !reader.direct_reads()) continue;
      int64_t b = 0;
      rows.push_back({direct ? "raw uint8, shuffled (pread)" : "raw uint8, shuffled (H5Dread)",
                      measure(
                          [&] {
                            reader.read_images(order.data() + (b++ % batches) * batch, batch, out.data());
                            return batch;
                          },
                          seconds, repeats)});
    }
  }

  // 3. The loader: normalized float NCHW batches, shuffled; then chunk-shuffled; then full augmentation; then
  // uint8 NCHW batches (data.normalize_on device) plain and augmented.
  auto loader_row = [&](const std::string& name, LoaderOptions o) {
    o.split = split;
    o.batch_size = batch;
    o.threads = threads;
    o.prefetch_batches = prefetch;
    o.seed = 1;
    ShardLoader loader(path, o);
    int64_t epoch = 0;
    loader.start_epoch(epoch);
    Batch b;
    rows.push_back({name, measure(
                              [&] {
                                if (!loader.next(&b)) {
                                  loader.start_epoch(++epoch);
                                  FT_CHECK(loader.next(&b), "empty epoch");
                                }
                                return b.images.size(0);
                              },
                              seconds, repeats)});
  };
  LoaderOptions plain;
  plain.normalization =
      info.std.size() == static_cast<size_t>(info.channels) ? Normalization::kMeanStd : Normalization::kUnit;
  loader_row("normalized float, shuffled", plain);
  LoaderOptions chunked = plain;
  chunked.chunk_shuffle = true;
  loader_row("normalized float, chunk_shuffle", chunked);
  LoaderOptions augmented = plain;
  // Seed 003's ImageDataGenerator: rotation 20, shifts 0.2, shear 0.2, zoom 0.2, horizontal flip, nearest.
  augmented.augment.rotation_range = 20;
  augmented.augment.width_shift_range = 0.2f;
  augmented.augment.height_shift_range = 0.2f;
  augmented.augment.shear_range = 0.2f;
  augmented.augment.zoom_range = 0.2f;
  augmented.augment.horizontal_flip = true;
  loader_row("+ flip/rotate/shift/shear/zoom", augmented);
  // data.normalize_on device (GPU runs' default): the same batches as uint8, normalized on the device.
  LoaderOptions plain_bytes = plain;
  plain_bytes.uint8_images = true;
  loader_row("uint8 for the device, shuffled", plain_bytes);
  LoaderOptions augmented_bytes = augmented;
  augmented_bytes.uint8_images = true;
  loader_row("uint8 for the device, augmented", augmented_bytes);

  const double ceiling = rows[0].m.median();
  log("");
  std::snprintf(line, sizeof line, "%-32s %11s %11s %11s %9s %9s %13s", "mode", "images/s", "min", "max", "MB/s",
                "cpu/wall", "images/cpu-s");
  log(line);
  for (const auto& r : rows) {
    const auto [lo, hi] = std::minmax_element(r.m.rates.begin(), r.m.rates.end());
    std::snprintf(line, sizeof line, "%-32s %11.0f %11.0f %11.0f %9.0f %9.2f %13.0f", r.name.c_str(), r.m.median(), *lo,
                  *hi, r.m.median() * bytes / 1e6, r.m.cpu_per_wall,
                  r.m.cpu_per_wall > 0 ? r.m.median() / r.m.cpu_per_wall : 0.0);
    log(line);
  }
  std::snprintf(line, sizeof line,
                "images/s: median over repetitions, this process; MB/s: uint8 image bytes; cpu/wall: cores this\n"
                "process kept busy (below 1 with --threads 1 means it waited or was preempted; compare images/cpu-s).\n"
                "memcpy ceiling: %.0f images/s. Augmentation kernel: %s.",
                ceiling, augment_kernel_name().c_str());
  log(line);
}

}  // namespace facetrain
