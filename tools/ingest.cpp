// `facetrain ingest` as a library function (see ingest.h): list the source, subsample and split it, then
// decode + preprocess windows of images on all cores while a writer thread appends them in sample order.
#include "tools/ingest.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <sstream>
#include <tuple>

#include <opencv2/core.hpp>

#include "core/error.h"
#include "core/log.h"
#include "datastore/store.h"
#include "tools/idx.h"
#include "tools/image_prep.h"
#include "tools/ordered_pipeline.h"
#include "tools/sources.h"

namespace facetrain {
namespace fs = std::filesystem;
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

// IDX: train file -> samples without a split (val may be carved from them), t10k file -> test.
SourceListing list_idx(const IngestOptions& o, IdxArray* train, IdxArray* test) {
  const IdxFiles files = find_idx_files(o.input, o.names.input);
  *train = read_idx(files.train_images);
  *test = read_idx(files.test_images);
  const IdxArray train_labels = read_idx(files.train_labels);
  const IdxArray test_labels = read_idx(files.test_labels);
  for (const auto* a : {train, test}) {
    const std::string& path = a == train ? files.train_images : files.test_images;
    FT_USER_CHECK(a->dims.size() == 3, path << ": images must be 3-D (N, rows, cols), got " << a->dims.size() << "-D");
  }
  FT_USER_CHECK(train->dims[1] == test->dims[1] && train->dims[2] == test->dims[2],
                files.test_images << ": image size differs from " << files.train_images);
  FT_USER_CHECK(train_labels.dims.size() == 1 && train_labels.dims[0] == train->dims[0],
                files.train_labels << ": " << train_labels.dims[0] << " labels for " << train->dims[0] << " images");
  FT_USER_CHECK(test_labels.dims.size() == 1 && test_labels.dims[0] == test->dims[0],
                files.test_labels << ": " << test_labels.dims[0] << " labels for " << test->dims[0] << " images");

  SourceListing listing;
  listing.label_source = "idx";
  listing.partition = "train/t10k files";
  listing.class_names = idx_class_names(o.idx_classes, o.input);
  uint8_t max_label = 0;
  for (uint8_t v : train_labels.data) max_label = std::max(max_label, v);
  for (uint8_t v : test_labels.data) max_label = std::max(max_label, v);
  for (size_t k = listing.class_names.size(); k <= max_label; ++k) listing.class_names.push_back(std::to_string(k));

  const int64_t n_train = train->dims[0], n_test = test->dims[0];
  listing.samples.resize(static_cast<size_t>(n_train + n_test));
  char name[64];
  for (int64_t i = 0; i < n_train + n_test; ++i) {
    SourceSample& s = listing.samples[static_cast<size_t>(i)];
    const bool is_train = i < n_train;
    const int64_t k = is_train ? i : i - n_train;
    std::snprintf(name, sizeof(name), "%s/%06lld", is_train ? "train" : "t10k", static_cast<long long>(k));
    s.name = name;
    s.label = is_train ? train_labels.data[static_cast<size_t>(k)] : test_labels.data[static_cast<size_t>(k)];
    s.split = is_train ? kNoSplit : static_cast<int>(Split::kTest);
    s.source_index = i;
  }
  return listing;
}

}  // namespace

IngestSummary run_ingest(const IngestOptions& o) {
  const Clock::time_point start = Clock::now();
  // 0. the options as the launcher checked them (ingest.h)
  const bool is_idx = o.source == "idx";
  FT_CHECK(o.source == "folders" || o.source == "celeba" || is_idx, "source '" << o.source << "'");
  FT_CHECK(!o.input.empty() && !o.output.empty(), "input and output are required");
  FT_CHECK(o.channels == 0 || o.channels == 1 || o.channels == 3, "channels " << o.channels);
  FT_CHECK(o.height >= 0 && o.height <= 8192 && o.width >= 0 && o.width <= 8192, o.height << "x" << o.width);
  FT_CHECK(o.limit >= 0 && o.train_limit >= 0 && o.threads >= 0, "negative limit, train_limit or threads");
  FT_CHECK(o.val_fraction < 1 && o.test_fraction < 1, "fractions " << o.val_fraction << ", " << o.test_fraction);
  FT_CHECK(!is_idx || (!o.face_crop && o.test_fraction < 0), "face_crop or test_fraction with an idx source");
  FT_USER_CHECK(o.overwrite || !fs::exists(o.output), o.output << " already exists (set overwrite to replace it)");

  // 1. list the source
  IdxArray idx_train, idx_test;
  SourceListing listing;
  if (o.source == "folders") {
    listing = list_image_folders(o.input, o.names.input);
  } else if (o.source == "celeba") {
    listing = list_celeba(o.input, o.label_attribute, o.names.input, o.names.label_attribute);
  } else {
    listing = list_idx(o, &idx_train, &idx_test);
  }

  // 2. subsample and split
  if (!is_idx && !listing.partition.empty()) {
    FT_USER_CHECK(o.val_fraction < 0 && o.test_fraction < 0,
                  (o.val_fraction >= 0 ? o.names.val_fraction : o.names.test_fraction)
                      << ": " << o.input << " has its own partition (" << listing.partition
                      << "); remove the flag to use it");
  }
  select_classes(&listing, o.classes, o.names.classes);
  apply_limit(&listing, o.limit);
  const double val_fraction = o.val_fraction >= 0 ? o.val_fraction : 0.1;
  const double test_fraction = o.test_fraction >= 0 ? o.test_fraction : (is_idx ? 0.0 : 0.1);
  FT_USER_CHECK(val_fraction + test_fraction < 1, o.names.val_fraction << " + " << o.names.test_fraction << " = "
                                                                       << val_fraction + test_fraction
                                                                       << " leaves no training images");
  assign_fraction_splits(&listing, val_fraction, test_fraction, o.seed);
  apply_train_limit(&listing, o.train_limit);

  // 3. preprocessing and store layout
  PrepOptions prep;
  if (is_idx) {
    prep.height = static_cast<int>(idx_train.dims[1]);
    prep.width = static_cast<int>(idx_train.dims[2]);
  }
  if (o.height > 0) prep.height = o.height;
  if (o.width > 0) prep.width = o.width;
  prep.channels = o.channels > 0 ? o.channels : (is_idx ? 1 : 3);
  std::unique_ptr<FaceDetector> detector;
  if (o.face_crop) {
    const std::string cascade = o.face_cascade.empty() ? default_face_cascade_path() : o.face_cascade;
    FT_USER_CHECK(!cascade.empty(),
                  "face crop: haarcascade_frontalface_default.xml not found under "
                  "/usr/share/opencv4/haarcascades (install opencv-data or set face_cascade)");
    detector = std::make_unique<FaceDetector>(cascade);
    prep.face_detector = detector.get();
  }
  const StoreLayout layout{prep.height,           prep.width,           prep.channels,
                           listing.class_names,   listing.label_source, listing.attribute_names,
                           listing.has_identities};

  IngestSummary summary;
  summary.output = o.output;
  std::tie(summary.height, summary.width, summary.channels) = std::tie(layout.height, layout.width, layout.channels);
  summary.class_names = layout.class_names;
  summary.partition =
      listing.partition.empty() ? "seeded fractions (seed " + std::to_string(o.seed) + ")" : listing.partition;
  if (is_idx && val_fraction > 0) summary.partition += " + seeded val fraction";
  summary.listed = static_cast<int64_t>(listing.samples.size());
  summary.counts.assign(listing.class_names.size(), std::vector<int64_t>(3, 0));
  const int64_t n = summary.listed;
  FT_USER_CHECK(n > 0, o.names.input << " " << o.input << ": no images to ingest");
  if (!o.quiet) {
    log("ingest: " + std::to_string(n) + " images from " + o.input + " (" + o.source + ", " +
        std::to_string(listing.class_names.size()) + " classes) -> " + o.output + ", " + std::to_string(prep.height) +
        "x" + std::to_string(prep.width) + "x" + std::to_string(prep.channels) + (o.face_crop ? ", face crop" : ""));
  }

  // 4. decode on all cores, append in order
  StoreWriter writer(o.output, layout, o.overwrite);
  const int64_t image_bytes = int64_t(prep.height) * prep.width * prep.channels;
  const int64_t window = std::clamp<int64_t>((32ll << 20) / image_bytes, 64, 4096);
  std::vector<uint8_t> pixels(static_cast<size_t>(2 * window * image_bytes));
  struct SlotState {
    DecodeStatus status = DecodeStatus::kOk;
    bool face_found = true;
  };
  std::vector<SlotState> slots(static_cast<size_t>(2 * window));
  const bool grayscale_decode = prep.channels == 1 && !o.face_crop;

  auto produce = [&](int64_t i, int64_t slot) {
    const SourceSample& s = listing.samples[static_cast<size_t>(i)];
    SlotState& state = slots[static_cast<size_t>(slot)];
    uint8_t* out = pixels.data() + slot * image_bytes;
    cv::Mat decoded;
    if (is_idx) {
      const int64_t n_train = idx_train.dims[0];
      const IdxArray& a = s.source_index < n_train ? idx_train : idx_test;
      const int64_t k = s.source_index < n_train ? s.source_index : s.source_index - n_train;
      const int rows = static_cast<int>(a.dims[1]), cols = static_cast<int>(a.dims[2]);
      decoded = cv::Mat(rows, cols, CV_8UC1, const_cast<uint8_t*>(a.data.data()) + k * rows * cols);
      state.status = DecodeStatus::kOk;
    } else {
      state.status = read_image_file(s.path, grayscale_decode, &decoded);
    }
    if (state.status == DecodeStatus::kOk) state.face_found = prepare_image(decoded, prep, out);
  };
  auto consume = [&](int64_t i, int64_t slot) {
    const SourceSample& s = listing.samples[static_cast<size_t>(i)];
    const SlotState& state = slots[static_cast<size_t>(slot)];
    if (state.status != DecodeStatus::kOk) {
      ++summary.skipped;
      if (summary.skipped_examples.size() < IngestSummary::kMaxSkippedListed) {
        summary.skipped_examples.push_back({s.name, decode_status_name(state.status)});
      }
      return;
    }
    if (!state.face_found) ++summary.faces_not_found;
    writer.append(pixels.data() + slot * image_bytes, s.label, static_cast<Split>(s.split), s.name, s.attributes,
                  s.identity);
    ++summary.counts[static_cast<size_t>(s.label)][static_cast<size_t>(s.split)];
    ++summary.written;
  };
  Clock::time_point last_report = start;
  const Clock::time_point decode_start = Clock::now();
  auto after_window = [&](int64_t done) {
    if (o.quiet || done == n || seconds_since(last_report) < 2.0) return;
    last_report = Clock::now();
    char line[160];
    std::snprintf(line, sizeof(line), "ingest: %lld/%lld images (%.0f images/s)", static_cast<long long>(done),
                  static_cast<long long>(n), done / seconds_since(decode_start));
    log(line);
  };
  {
    OpenCvThreadsScope threads(o.threads);
    run_ordered_pipeline(n, window, produce, consume, after_window, o.stop,
                         "ingest interrupted by a signal; removed the partial output " + o.output + ".partial");
  }

  // 5. statistics and rename into place
  int64_t train_written = 0;
  for (const auto& c : summary.counts) train_written += c[static_cast<size_t>(Split::kTrain)];
  FT_USER_CHECK(summary.written > 0, o.names.input << " " << o.input << ": none of the " << n
                                                   << " images could be read (" << summary.skipped << " skipped)");
  FT_USER_CHECK(train_written > 0, o.names.input << " " << o.input << ": no readable image landed in the train split");
  writer.finish();
  summary.seconds = seconds_since(start);
  return summary;
}

std::string format_ingest_summary(const IngestSummary& s) {
  std::ostringstream out;
  char line[256];
  std::snprintf(line, sizeof(line), "ingest: wrote %s in %.1f s: %lld images %dx%dx%d, splits from %s\n",
                s.output.c_str(), s.seconds, static_cast<long long>(s.written), s.height, s.width, s.channels,
                s.partition.c_str());
  out << line;
  size_t width = 5;
  for (const auto& c : s.class_names) width = std::max(width, c.size());
  std::snprintf(line, sizeof(line), "  %-*s %9s %9s %9s %9s\n", static_cast<int>(width), "class", "train", "val",
                "test", "total");
  out << line;
  std::vector<int64_t> totals(3, 0);
  for (size_t k = 0; k < s.class_names.size(); ++k) {
    const auto& c = s.counts[k];
    std::snprintf(line, sizeof(line), "  %-*s %9lld %9lld %9lld %9lld\n", static_cast<int>(width),
                  s.class_names[k].c_str(), static_cast<long long>(c[0]), static_cast<long long>(c[1]),
                  static_cast<long long>(c[2]), static_cast<long long>(c[0] + c[1] + c[2]));
    out << line;
    for (int j = 0; j < 3; ++j) totals[j] += c[j];
  }
  std::snprintf(line, sizeof(line), "  %-*s %9lld %9lld %9lld %9lld\n", static_cast<int>(width), "total",
                static_cast<long long>(totals[0]), static_cast<long long>(totals[1]), static_cast<long long>(totals[2]),
                static_cast<long long>(s.written));
  out << line;
  out << "  skipped: " << s.skipped << " of " << s.listed << " images";
  if (!s.skipped_examples.empty()) {
    out << " (";
    for (size_t k = 0; k < s.skipped_examples.size(); ++k) {
      out << (k ? ", " : "") << s.skipped_examples[k].name << ": " << s.skipped_examples[k].reason;
    }
    if (static_cast<int64_t>(s.skipped_examples.size()) < s.skipped) out << ", ...";
    out << ")";
  }
  out << "\n";
  if (s.faces_not_found > 0) {
    out << "  face crop: no face found in " << s.faces_not_found << " images (center crop used)\n";
  }
  std::string text = out.str();
  if (!text.empty() && text.back() == '\n') text.pop_back();
  return text;
}

}  // namespace facetrain
