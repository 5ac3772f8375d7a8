// `facetrain bench step`: the command line of bench/step_bench.h.
#include <algorithm>
#include <filesystem>

#include "core/config.h"
#include "core/error.h"
#include "datastore/store.h"
#include "launcher/commands/commands.h"
#include "launcher/commands/flag_groups.h"
#include "launcher/flags.h"
#include "launcher/threads.h"
#include "bench/step_bench.h"
#include "trainer/step_profiler.h"

namespace facetrain {
namespace {

int bounded_int_flag(const CommandLine& cli, const std::string& name, int lo, int hi) {
  const int64_t v = cli.integer(name);
  FT_USER_CHECK(v >= lo && v <= hi, "--" << name << " " << v << " is out of range [" << lo << ", " << hi << "]");
  return static_cast<int>(v);
}

// The model's input shape: the config's store when it exists, each flag overriding it.
StoreInfo input_shape(const proto::RunConfig& config, const CommandLine& cli) {
  StoreInfo info;
  const std::string& path = config.data().store();
  const bool have_store = !path.empty() && std::filesystem::exists(path);
  if (have_store) info = StoreReader(path).info();
  if (cli.given("image")) info.height = info.width = bounded_int_flag(cli, "image", 1, 4096);
  if (cli.given("channels")) info.channels = bounded_int_flag(cli, "channels", 1, 4);
  if (cli.given("classes")) {
    const int classes = bounded_int_flag(cli, "classes", 2, 100000);
    info.class_names.clear();
    for (int k = 0; k < classes; ++k) info.class_names.push_back("class" + std::to_string(k));
  }
  FT_USER_CHECK(info.height > 0 && info.channels > 0 && !info.class_names.empty(),
                "bench step: data.store '" << path
                                           << "' does not exist; give the input shape with --image, "
                                              "--channels and --classes");
  if (info.class_weights.size() != info.class_names.size()) info.class_weights.assign(info.class_names.size(), 1.0f);
  if (info.mean.size() != static_cast<size_t>(info.channels)) info.mean.assign(info.channels, 0.5f);
  if (info.std.size() != static_cast<size_t>(info.channels)) info.std.assign(info.channels, 0.25f);
  return info;
}

}  // namespace

int bench_step_command(int argc, char** argv, ProcessContext& ctx) {
  CommandLine cli(argv[0],
                  "Time the training step of a config's model on random in-memory batches (mpirun -np N "
                  "for N ranks; the gradient sync is the trainer's own).");
  declare_config_flags(cli, "run config (configs/*.pbtxt): model, optimizer, batch size, accumulation");
  cli.text("steps", "timed steps (the median is reported)", "10")
      .text("warmup", "untimed steps first", "2")
      .text("image", "image size (default: the config's store)")
      .text("channels", "image channels (default: the config's store)")
      .text("classes", "classes (default: the config's store)")
      .text("threads", "compute threads per rank (default: distributed.threads_per_rank, else cores/ranks per node)",
            "0")
      .text("perf-every",
            "timed steps between the perf/* statistics inside the loop, as a run's log interval (default: "
            "logging.every_steps; 0: none, to measure their cost side by side)")
      .text("profile", "FIRST:LAST: record those steps (from 1, warm-up included) with LibTorch's profiler", "")
      .text("profile-dir", "where --profile writes rank-R.trace.json", "profile");
  if (!cli.parse(argc, argv)) return 0;
  proto::RunConfig config = config_from_flags(cli);
  const int steps = bounded_int_flag(cli, "steps", 1, 100000);
  const int warmup = bounded_int_flag(cli, "warmup", 0, 100000);
  const int64_t threads = cli.integer("threads");
  apply_thread_flag(ctx, threads != 0 ? threads : config.distributed().threads_per_rank());
  const StoreInfo info = input_shape(config, cli);
  const int perf_every = cli.given("perf-every") ? bounded_int_flag(cli, "perf-every", 0, 100000)
                                                 : std::max(1, config.logging().every_steps());
  const ProfileWindow profile = ProfileWindow::parse(cli.get("profile"), "--profile");
  run_step_bench(config, info, steps, warmup, perf_every, ctx, profile, cli.get("profile-dir"));
  return 0;
}

}  // namespace facetrain
