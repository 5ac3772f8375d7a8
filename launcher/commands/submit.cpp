// `facetrain submit`: checks the flags and the run config (before the queue wait, not after it), renders
// slurm/train.sbatch for them, prints it or writes it to a file, and with --submit hands it to sbatch
// (slurm/submit.h).
#include <filesystem>
#include <string>
#include <vector>

#include "core/config.h"
#include "core/error.h"
#include "launcher/commands/commands.h"
#include "launcher/commands/flag_groups.h"
#include "launcher/flags.h"
#include "slurm/sbatch_script.h"
#include "slurm/submit.h"

namespace facetrain {
namespace {

// A count flag (--nodes 2): read as text so a bad value is reported with the flag's name.
int count_flag(const CommandLine& cli, const std::string& name, int fallback) {
  if (!cli.given(name)) return fallback;
  const std::string text = cli.get(name);
  size_t used = 0;
  long value = -1;
  try {
    value = std::stol(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  FT_USER_CHECK(used == text.size() && used > 0, "--" << name << " " << text << ": expected a whole number");
  FT_USER_CHECK(value >= 1 && value <= 1000000, "--" << name << " " << text << ": must be >= 1");
  return static_cast<int>(value);
}

}  // namespace

int submit_command(int argc, char** argv) {
  CommandLine cli(argv[0],
                  "Render slurm/train.sbatch for a run config and node/GPU count; print it, write it, or "
                  "submit it with sbatch.");
  declare_config_flags(cli, "run config, Protobuf text format (checked now, before the queue wait)");
  cli.text("nodes", "nodes", "1")
      .text("gpus-per-node", "GPUs per node = ranks per node, one GPU each (GPU jobs)")
      .toggle("cpu", "CPU-only job: no GPUs requested; ranks per node from --tasks-per-node")
      .text("tasks-per-node", "ranks per node (--cpu jobs)")
      .text("cpus-per-task",
            "CPU cores per rank (LibTorch threads and loader workers; default 8 with GPUs, 1 with --cpu)")
      .text("time", "time limit, e.g. 12:00:00 or 1-00:00:00 (default: the script's 24:00:00)")
      .text("partition", "partition(s), e.g. gpu")
      .text("account", "account to charge")
      .text("array", "job array, e.g. 0-3 (one run directory per task: RUN_DIR/task-<id>, data.seed=<id>)")
      .text("launcher", "srun (srun --mpi=pmix) | mpirun (Open MPI inside the allocation)", "srun")
      .text("output-script", "write the script to FILE instead of printing it")
      .toggle("submit", "submit the script with sbatch and print the job id")
      .examples(
          "  facetrain submit --config configs/vit-fashion-mnist.pbtxt --nodes 2 --gpus-per-node 4 --submit\n"
          "  facetrain submit --config configs/vit-fashion-mnist.pbtxt --cpu --tasks-per-node 2 "
          "--output-script job.sbatch");
  if (!cli.parse(argc, argv)) return 0;

  // 1. The config: it must exist and parse with its overrides, as `facetrain train` will read it.
  const std::string config_arg = cli.get("config");
  FT_USER_CHECK(std::filesystem::is_regular_file(config_arg), "--config " << config_arg << ": no such file");
  const std::vector<std::string> sets = cli.all("set");
  const proto::RunConfig config = config_from_flags(cli);

  // 2. The resources: one rank per GPU, or --cpu with an explicit rank count.
  const bool cpu = cli.given("cpu");
  SbatchSettings s;
  s.gpus = !cpu;
  s.nodes = count_flag(cli, "nodes", 1);
  if (cpu) {
    FT_USER_CHECK(!cli.given("gpus-per-node"),
                  "--gpus-per-node: not with --cpu (use --tasks-per-node for ranks per node)");
    FT_USER_CHECK(cli.given("tasks-per-node"), "--tasks-per-node R is required with --cpu (ranks per node)");
    s.tasks_per_node = count_flag(cli, "tasks-per-node", 1);
  } else {
    FT_USER_CHECK(!cli.given("tasks-per-node"),
                  "--tasks-per-node: only with --cpu (GPU jobs run one rank per GPU: "
                  "use --gpus-per-node)");
    FT_USER_CHECK(cli.given("gpus-per-node"), "--gpus-per-node G is required (or --cpu --tasks-per-node R)");
    s.tasks_per_node = count_flag(cli, "gpus-per-node", 1);
  }
  s.cpus_per_task = count_flag(cli, "cpus-per-task", cpu ? 1 : 8);
  if (cli.given("time")) {
    s.time = cli.get("time");
    check_time_limit(s.time, "--time");
  }
  if (cli.given("partition")) {
    s.partition = cli.get("partition");
    check_slurm_name(s.partition, "--partition", true);
  }
  if (cli.given("account")) {
    s.account = cli.get("account");
    check_slurm_name(s.account, "--account", false);
  }
  if (cli.given("array")) {
    s.array = cli.get("array");
    check_array_spec(s.array, "--array");
  }
  // The batch script forwards and requeues on the signal the ranks checkpoint on (checkpoint.preemption_signal,
  // e.g. --set checkpoint.preemption_signal=USR2 where NCCL or a profiler claims SIGUSR1).
  s.preemption_signal = config.checkpoint().preemption_signal();
  s.launcher = cli.get("launcher");
  FT_USER_CHECK(s.launcher == "srun" || s.launcher == "mpirun",
                "--launcher " << s.launcher << ": expected srun or mpirun");

  // 3. The job's paths and name, 4. print, write or submit (slurm/submit.h).
  set_job_paths(&s, config, config_arg, sets, std::vector<std::string>(argv, argv + argc));
  deliver_sbatch_script(render_sbatch_script(train_sbatch_template(), s), cli.get("output-script"), cli.given("submit"),
                        ScriptDeliveryNames{"--output-script", "--submit"});
  return 0;
}

}  // namespace facetrain
