// StepProfiler and merge_rank_traces (step_profiler.h). The trace is written from the profiler's own event list
// (KinetoEvent: name, thread or stream, start, duration), not its save(): one writer for every LibTorch build,
// with or without libkineto, and the ranks' clock shift applied on the way out.
#include "trainer/step_profiler.h"

#include <ATen/record_function.h>
#include <torch/csrc/autograd/profiler_kineto.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <sstream>
#include <vector>

#include "comm/communicator.h"
#include "core/atomic_file.h"
#include "core/error.h"

namespace facetrain {
namespace {

namespace profiler = torch::autograd::profiler;
using torch::profiler::impl::ActivityType;
using torch::profiler::impl::ProfilerConfig;
using torch::profiler::impl::ProfilerState;
using Json = nlohmann::json;

constexpr int kClockRounds = 5;
constexpr char kClockMark[] = "facetrain clock sync";
// Gradient bucket ranges (comm/gradient_sync.cpp names them "all-reduce: <what> bucket <k>"): a track each.
constexpr char kBucketPrefix[] = "all-reduce: ";
constexpr int64_t kBucketTrack = 1'000'000, kStreamTrack = 2'000'000;

// An event's start and duration in microseconds (2.x counts nanoseconds, 1.13 microseconds).
struct Span {
  double start_us, duration_us;
};
Span span_of(const profiler::KinetoEvent& e) {
#if TORCH_VERSION_MAJOR >= 2
  return {static_cast<double>(e.startNs()) / 1e3, static_cast<double>(e.durationNs()) / 1e3};
#else
  return {static_cast<double>(e.startUs()), static_cast<double>(e.durationUs())};
#endif
}

std::string host_name() {
  char name[256] = {};
  gethostname(name, sizeof(name) - 1);
  return name;
}

Json metadata(const char* what, int64_t pid, int64_t tid, const std::string& name) {
  return Json{{"ph", "M"}, {"name", what}, {"pid", pid}, {"tid", tid}, {"args", {{"name", name}}}};
}

}  // namespace

ProfileWindow ProfileWindow::parse(const std::string& text, const std::string& field) {
  ProfileWindow w;
  if (text.empty()) return w;
  static const std::regex pattern(R"(\s*(\d{1,12})\s*(?::\s*(\d{1,12})\s*)?)");
  std::smatch m;
  FT_USER_CHECK(std::regex_match(text, m, pattern),
                field << ": '" << text << "' is not FIRST:LAST (training steps, e.g. 20:25) or one STEP");
  w.first = std::stoll(m[1].str());
  w.last = m[2].matched ? std::stoll(m[2].str()) : w.first;
  FT_USER_CHECK(w.first >= 1 && w.last >= w.first,
                field << ": '" << text << "' needs 1 <= FIRST <= LAST (steps count from 1)");
  return w;
}

std::string ProfileWindow::describe() const {
  return first == last ? "step " + std::to_string(first)
                       : "steps " + std::to_string(first) + "-" + std::to_string(last);
}

StepProfiler::StepProfiler(ProfileWindow window, std::string directory, Communicator& control, torch::Device device)
    : window_(window), directory_(std::move(directory)), control_(control), device_(device) {}

StepProfiler::~StepProfiler() {
  if (open_) {
    try {
      profiler::disableProfiler();
    } catch (...) {  // nothing to save from a run that is failing anyway
    }
  }
}

void StepProfiler::before_step(int64_t step) {
  if (!window_.active() || done_ || open_ || step < window_.first || step > window_.last) return;
  std::filesystem::create_directories(directory_);
  std::set<ActivityType> activities{ActivityType::CPU};
  if (device_.is_cuda()) activities.insert(ActivityType::CUDA);
  // Shapes and stacks cost time in every operator of the window; memory events only where there is a device.
  const ProfilerConfig config(ProfilerState::KINETO, /*report_input_shapes=*/false,
                              /*profile_memory=*/device_.is_cuda());
  profiler::prepareProfiler(config, activities);
  profiler::enableProfiler(config, activities);
  open_ = true;
  // The clock marks: every rank leaves each barrier at nearly the same instant (after_step picks the round
  // whose marks are closest together).
  for (int round = 0; round < kClockRounds; ++round) {
    control_.barrier("barrier " + std::to_string(round + 1) + " of the profiler's clock alignment");
    RECORD_USER_SCOPE(kClockMark);
  }
}

std::string StepProfiler::after_step(int64_t step) {
  return open_ && step >= window_.last ? close_and_write() : std::string();
}

std::string StepProfiler::finish() { return open_ ? close_and_write() : std::string(); }

std::string StepProfiler::close_and_write() {
  const std::unique_ptr<profiler::ProfilerResult> result = profiler::disableProfiler();
  open_ = false;
  done_ = true;
  const std::vector<profiler::KinetoEvent>& events = result->events();
  const int rank = control_.rank();
  const std::string host = host_name();

  // Clock: [host, mark 1..K] of every rank; the round with the least spread across ranks is the alignment.
  std::vector<double> row(1 + kClockRounds, 0.0);
  row[0] = static_cast<double>(std::hash<std::string>()(host) & 0xffffffffu);  // exact in a double
  int marks = 0;
  for (const auto& e : events) {
    if (e.name() == kClockMark && marks < kClockRounds) row[1 + marks++] = span_of(e).start_us;
  }
  FT_CHECK(marks == kClockRounds, "the profiler recorded " << marks << " of " << kClockRounds << " clock marks");
  const torch::Tensor rows = control_.all_gather(torch::tensor(row, torch::kFloat64).reshape({1, -1}),
                                                 "allgather of the profiler's clock marks");
  const torch::Tensor mark_columns = rows.narrow(1, 1, kClockRounds);
  const torch::Tensor spread = std::get<0>(mark_columns.max(0)) - std::get<0>(mark_columns.min(0));
  const int64_t best = spread.argmin().item<int64_t>();
  const double origin = rows[0][1 + best].item<double>();
  const bool same_host_as_rank0 = rows[rank][0].item<double>() == rows[0][0].item<double>();
  const double offset = same_host_as_rank0 ? 0.0 : rows[rank][1 + best].item<double>() - origin;
  const double shift = origin + offset;

  Json trace_events = Json::array();
  std::map<int64_t, std::string> tracks;  // tid -> its name
  std::map<std::string, int64_t> bucket_tracks;
  std::set<uint64_t> training_threads;
  for (const auto& e : events) {
    const std::string name = e.name();
    int64_t tid = static_cast<int64_t>(e.startThreadId());
    std::string category = "cpu_op";
    if (e.deviceType() != c10::DeviceType::CPU) {
      tid = kStreamTrack + e.deviceResourceId();
      tracks[tid] = "GPU " + std::to_string(static_cast<int>(e.deviceIndex())) + " stream " +
                    std::to_string(e.deviceResourceId());
      category = "kernel";
    } else if (name.rfind(kBucketPrefix, 0) == 0) {
      const auto it = bucket_tracks.emplace(name, kBucketTrack + static_cast<int64_t>(bucket_tracks.size())).first;
      tid = it->second;
      tracks[tid] = name.substr(sizeof(kBucketPrefix) - 1);
      category = "gradient_bucket";
    } else if (name.rfind("step ", 0) == 0) {
      training_threads.insert(e.startThreadId());
    }
    trace_events.push_back({{"name", name},
                            {"ph", "X"},
                            {"cat", category},
                            {"ts", span_of(e).start_us - shift},
                            {"dur", span_of(e).duration_us},
                            {"pid", rank},
                            {"tid", tid}});
  }
  for (const auto& e : events) {
    if (e.deviceType() != c10::DeviceType::CPU) continue;
    const auto tid = static_cast<int64_t>(e.startThreadId());
    if (tracks.count(tid) == 0 && tid < kBucketTrack)
      tracks[tid] = training_threads.count(e.startThreadId()) ? "training thread" : "thread " + std::to_string(tid);
  }
  trace_events.push_back(metadata("process_name", rank, 0, "rank " + std::to_string(rank) + " (" + host + ")"));
  trace_events.push_back(
      Json{{"ph", "M"}, {"name", "process_sort_index"}, {"pid", rank}, {"tid", 0}, {"args", {{"sort_index", rank}}}});
  for (const auto& [tid, name] : tracks) trace_events.push_back(metadata("thread_name", rank, tid, name));

  const Json trace{{"traceEvents", trace_events},
                   {"displayTimeUnit", "ms"},
                   {"otherData",
                    {{"tool", "facetrain"},
                     {"rank", rank},
                     {"world_size", control_.size()},
                     {"host", host},
                     {"window", window_.describe()},
                     {"clock_offset_us", offset},
                     {"clock_skew_us", spread[best].item<double>()}}}};
  const std::string path =
      (std::filesystem::path(directory_) / ("rank-" + std::to_string(rank) + ".trace.json")).string();
  write_file_atomically(path, trace.dump());
  return path;
}

std::string merge_rank_traces(const std::string& profile_dir) {
  static const std::regex rank_file(R"(rank-(\d+)\.trace\.json)");
  std::map<int64_t, std::filesystem::path> files;
  std::error_code error;
  for (const auto& entry : std::filesystem::directory_iterator(profile_dir, error)) {
    std::smatch m;
    const std::string name = entry.path().filename().string();
    if (std::regex_match(name, m, rank_file)) files[std::stoll(m[1].str())] = entry.path();
  }
  FT_USER_CHECK(!error, profile_dir << ": " << error.message());
  FT_USER_CHECK(!files.empty(), profile_dir << ": no rank-R.trace.json (train with --profile FIRST:LAST)");
  Json merged_events = Json::array();
  Json ranks = Json::array();
  for (const auto& [rank, path] : files) {
    std::ifstream in(path);
    Json trace;
    try {
      trace = Json::parse(in);
    } catch (const Json::exception& e) {
      throw UserError(path.string() + ": not a Chrome trace: " + e.what());
    }
    FT_USER_CHECK(trace.contains("traceEvents") && trace["traceEvents"].is_array(),
                  path.string() << ": not a Chrome trace (no traceEvents)");
    for (auto& event : trace["traceEvents"]) {
      event["pid"] = rank;  // one track group per rank, whatever the file said
      merged_events.push_back(std::move(event));
    }
    ranks.push_back(trace.value("otherData", Json::object()));
  }
  const Json merged{{"traceEvents", merged_events}, {"displayTimeUnit", "ms"}, {"otherData", {{"ranks", ranks}}}};
  const std::string out = (std::filesystem::path(profile_dir) / "merged.trace.json").string();
  write_file_atomically(out, merged.dump());
  return out;
}

}  // namespace facetrain
