// `facetrain synth`: the command line of tools/synth.h (procedural face-like data sets).
#include <algorithm>
#include <cstdio>

#include "core/error.h"
#include "core/log.h"
#include "core/stop_signal.h"
#include "launcher/commands/commands.h"
#include "launcher/flags.h"
#include "tools/synth.h"

namespace facetrain {

int synth_command(int argc, char** argv) {
  cxxopts::Options options(argv[0], "Draw a procedural face-like data set (smiling vs neutral, glasses vs none).");
  options.add_options()
      ("output", "HDF5 store to write", cxxopts::value<std::string>())
      ("count", "number of images", cxxopts::value<std::string>())
      ("size", "image size (square)", cxxopts::value<std::string>()->default_value("64"))
      ("seed", "data set seed: same seed, same bytes", cxxopts::value<std::string>()->default_value("0"))
      ("task", "label: smiling (mouth) or glasses", cxxopts::value<std::string>()->default_value("smiling"))
      ("val-fraction", "validation fraction", cxxopts::value<std::string>()->default_value("0.1"))
      ("test-fraction", "test fraction", cxxopts::value<std::string>()->default_value("0.1"))
      ("threads", "drawing threads (0 = all cores; output is the same for any value)",
       cxxopts::value<std::string>()->default_value("0"))
      ("overwrite", "replace an existing output")
      ("quiet", "no progress lines or summary")
      ("h,help", "show this help");
  const cxxopts::ParseResult args = parse_flags(options, argc, argv);
  if (args.count("help")) {
    log(options.help());
    return 0;
  }
  FT_USER_CHECK(args.count("output"), argv[0] << ": --output FILE.h5 is required");
  FT_USER_CHECK(args.count("count"), argv[0] << ": --count N is required");
  SynthOptions o;
  o.output = args["output"].as<std::string>();
  o.count = int_flag(args, "count");
  o.size = static_cast<int>(int_flag(args, "size"));
  const int64_t seed = int_flag(args, "seed");
  FT_USER_CHECK(seed >= 0, "--seed " << seed << " is negative");
  o.seed = static_cast<uint64_t>(seed);
  o.task = parse_synth_task(args["task"].as<std::string>(), "--task");
  o.val_fraction = double_flag(args, "val-fraction");
  o.test_fraction = double_flag(args, "test-fraction");
  o.threads = static_cast<int>(int_flag(args, "threads"));
  o.overwrite = args.count("overwrite") > 0;
  o.quiet = args.count("quiet") > 0;
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
