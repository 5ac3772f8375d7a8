// `facetrain train`: parses flags, loads the run config with overrides, applies the per-rank thread count
// and prints one placement line per rank, then runs the generic training loop.
#include <torch/torch.h>

#include <cxxopts.hpp>
#include <iostream>

#include "launcher/threads.h"
#include "core/error.h"
#include "launcher/flags.h"
#include "core/log.h"
#include "comm/communicator.h"
#include "launcher/commands/commands.h"
#include "core/config.h"
#include "trainer/trainer.h"

namespace facetrain {

int train_command(int argc, char** argv, ProcessContext& ctx) {
  cxxopts::Options options(argv[0], "Train a model data-parallel on MPI ranks (mpirun -np N / srun).");
  options.add_options()
      ("config", "run config, Protobuf text format (configs/*.pbtxt; schema: core/config.proto)",
       cxxopts::value<std::string>())
      ("set", "override a config field: --set optimizer.lr=3e-4 (repeatable)",
       cxxopts::value<std::vector<std::string>>())
      ("resume", "none | auto (newest valid checkpoint in the run directory) | a checkpoint file",
       cxxopts::value<std::string>()->default_value("none"))
      ("threads", "LibTorch threads per rank (default: distributed.threads_per_rank, else cores/ranks per node)",
       cxxopts::value<int>()->default_value("0"))
      ("quiet", "no progress bar: plain periodic lines only")
      ("h,help", "show this help");
  // Flags and config are checked on every rank and agreed on: a bad file under mpirun is one line.
  cxxopts::ParseResult args;
  proto::RunConfig config;
  bool help = false;
  run_setup_on_every_rank(*ctx.comm, [&] {
    args = parse_flags(options, argc, argv);
    if (args.count("help")) {
      help = true;
      return;
    }
    FT_USER_CHECK(args.count("config"), argv[0] << ": --config FILE is required (see configs/)");
    const std::vector<std::string> overrides =
        args.count("set") ? args["set"].as<std::vector<std::string>>() : std::vector<std::string>{};
    config = load_run_config(args["config"].as<std::string>(), overrides);
    const int threads = args["threads"].as<int>();
    apply_thread_flag(ctx, threads != 0 ? threads : config.distributed().threads_per_rank());
  });
  if (help) {
    log(options.help());
    return 0;
  }
  TrainOptions train_options;
  train_options.resume = args["resume"].as<std::string>();
  train_options.quiet = args.count("quiet") > 0;
  return run_training(config, ctx, train_options);
}

}  // namespace facetrain
