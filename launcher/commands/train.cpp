// `facetrain train`: parses flags, loads the run config with overrides, applies the per-rank thread count
// and prints one placement line per rank, then runs the generic training loop.
#include <torch/torch.h>

#include <cstdlib>
#include <iostream>

#include "launcher/threads.h"
#include "core/error.h"
#include "launcher/flags.h"
#include "core/log.h"
#include "comm/communicator.h"
#include "launcher/commands/commands.h"
#include "launcher/commands/flag_groups.h"
#include "launcher/flags.h"
#include "core/config.h"
#include "runtime/setup_agreement.h"
#include "trainer/step_profiler.h"
#include "trainer/trainer.h"

namespace facetrain {
namespace {

// The reliability tests' faults (trainer/fault_plan.h) from the environment they set: FACETRAIN_FAULT_<WHAT>_RANK=r
// and FACETRAIN_FAULT_<WHAT>_STEP=s, both non-empty, arm <WHAT> (STALL, KILL, SIGNAL, SLOW, OOM,
// NAN) on rank r at step s.
FaultAt fault_from_environment(const std::string& what) {
  const char* r = std::getenv(("FACETRAIN_FAULT_" + what + "_RANK").c_str());
  const char* s = std::getenv(("FACETRAIN_FAULT_" + what + "_STEP").c_str());
  FaultAt fault;
  fault.armed = r != nullptr && s != nullptr && *r != '\0' && *s != '\0';
  if (fault.armed) {
    fault.rank = std::atoi(r);
    fault.step = std::atoll(s);
  }
  return fault;
}

}  // namespace

int train_command(int argc, char** argv, ProcessContext& ctx) {
  CommandLine cli(argv[0], "Train a model data-parallel on MPI ranks (mpirun -np N / srun).");
  declare_config_flags(cli, "run config, Protobuf text format (configs/*.pbtxt; schema: core/config.proto)");
  cli.text("resume", "none | auto (newest valid checkpoint in the run directory) | a checkpoint file", "none")
      .text("threads", "LibTorch threads per rank (default: distributed.threads_per_rank, else cores/ranks per node)",
            "0")
      .text("profile",
            "FIRST:LAST: record those training steps with LibTorch's profiler on every rank into "
            "RUN_DIR/profile/ (Chrome traces; logging.profile)",
            "")
      .toggle("quiet", "no progress bar: plain periodic lines only");
  // Flags and config are checked on every rank and agreed on: a bad file under mpirun is one line.
  proto::RunConfig config;
  bool help = false;
  run_setup_on_every_rank(*ctx.comm, [&] {
    help = !cli.parse(argc, argv);
    if (help) return;
    config = config_from_flags(cli);
    if (cli.given("profile")) {
      ProfileWindow::parse(cli.get("profile"), "--profile");  // a bad value names the flag, not the field
      config.mutable_logging()->set_profile(cli.get("profile"));
    }
    const int64_t threads = cli.integer("threads");
    apply_thread_flag(ctx, threads != 0 ? threads : config.distributed().threads_per_rank());
  });
  if (help) return 0;
  TrainOptions train_options;
  train_options.resume = cli.get("resume");
  train_options.resume_name = "--resume";
  train_options.quiet = cli.given("quiet");
  train_options.faults.stall = fault_from_environment("STALL");
  train_options.faults.kill = fault_from_environment("KILL");
  train_options.faults.signal = fault_from_environment("SIGNAL");
  train_options.faults.slow = fault_from_environment("SLOW");
  train_options.faults.out_of_memory = fault_from_environment("OOM");
  train_options.faults.nan_loss = fault_from_environment("NAN");
  return run_training(config, ctx, train_options);
}

}  // namespace facetrain
