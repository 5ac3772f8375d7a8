// `facetrain synth`: the command line of tools/synth.h (procedural face-like data sets).
#include <algorithm>
#include <cstdio>
#include <filesystem>

#include "core/error.h"
#include "core/log.h"
#include "core/stop_signal.h"
#include "launcher/commands/commands.h"
#include "launcher/commands/flag_groups.h"
#include "launcher/flags.h"
#include "tools/synth.h"

namespace facetrain {

int synth_command(int argc, char** argv) {
  CommandLine cli(argv[0], "Draw a procedural face-like data set (smiling vs neutral, glasses vs none).");
  declare_store_writer_flags(cli, "0.1", "drawing threads (0 = all cores; output is the same for any value)");
  cli.required("count", "number of images")
      .text("size", "image size (square)", "64")
      .text("task", "label: smiling (mouth) or glasses", "smiling");
  if (!cli.parse(argc, argv)) return 0;
  SynthOptions o;
  o.output = cli.get("output");
  o.count = cli.integer("count");
  FT_USER_CHECK(o.count >= 1 && o.count <= kMaxSynthCount,
                "--count " << o.count << " is not in [1, " << kMaxSynthCount << "]");
  const int64_t size = cli.integer("size");
  FT_USER_CHECK(size >= kMinSynthSize && size <= kMaxSynthSize,
                "--size " << size << " is not in [" << kMinSynthSize << ", " << kMaxSynthSize << "]");
  o.size = static_cast<int>(size);
  const int64_t seed = cli.integer("seed");
  FT_USER_CHECK(seed >= 0, "--seed " << seed << " is negative");
  o.seed = static_cast<uint64_t>(seed);
  o.task = parse_synth_task(cli.get("task"), "--task");
  o.val_fraction = cli.number("val-fraction");
  o.test_fraction = cli.number("test-fraction");
  FT_USER_CHECK(o.val_fraction >= 0 && o.test_fraction >= 0 && o.val_fraction + o.test_fraction < 1,
                "--val-fraction " << o.val_fraction << " and --test-fraction " << o.test_fraction
                                  << " must be >= 0 and leave a train split");
  o.threads = static_cast<int>(cli.integer("threads"));
  FT_USER_CHECK(o.threads >= 0, "--threads " << o.threads << " is negative");
  o.overwrite = cli.given("overwrite");
  FT_USER_CHECK(o.overwrite || !std::filesystem::exists(o.output),
                "--output " << o.output << " already exists (pass --overwrite to replace it)");
  o.quiet = cli.given("quiet");
  StopOnSignal stop;
  o.stop = stop.flag();
  const SynthSummary s = run_synth(o);
  if (!o.quiet) {
    char line[256];
    std::snprintf(line, sizeof(line), "synth: wrote %s in %.1f s (%.0f images/s)", s.output.c_str(), s.seconds,
                  s.count / std::max(s.seconds, 1e-9));
    std::string text = line;
    for (size_t k = 0; k < s.class_names.size(); ++k) {
      std::snprintf(line, sizeof(line), "\n  %-10s train %9lld  val %9lld  test %9lld", s.class_names[k].c_str(),
                    static_cast<long long>(s.counts[k][0]), static_cast<long long>(s.counts[k][1]),
                    static_cast<long long>(s.counts[k][2]));
      text += line;
    }
    log(text);
  }
  return 0;
}

}  // namespace facetrain
