// `facetrain submit`: checks the flags and the run config (before the queue wait, not after it), renders
// slurm/train.sbatch for them, prints it or writes it to a file, and with --submit hands it to sbatch.
#include <sys/wait.h>
#include <unistd.h>

#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include "core/atomic_file.h"
#include "core/error.h"
#include "launcher/commands/commands.h"
#include "launcher/commands/flag_groups.h"
#include "launcher/flags.h"
#include "slurm/sbatch_script.h"
#include "core/config.h"

namespace facetrain {
namespace {

namespace fs = std::filesystem;

std::string absolute_path(const std::string& path) { return fs::absolute(path).lexically_normal().string(); }

// The binary that runs `submit` is the one the job should run (on shared storage on a real cluster).
std::string this_binary() {
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  return ec ? std::string("facetrain") : exe.string();
}

// Slurm job names: keep them to characters that need no quoting in squeue output or file names.
std::string job_name_for(const proto::RunConfig& config, const std::string& config_path) {
  std::string name = config.name().empty() ? fs::path(config_path).stem().string() : config.name();
  for (char& c : name) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '.' && c != '-') c = '-';
  }
  return name.empty() ? "facetrain" : name;
}

void write_file(const std::string& path, const std::string& text, const std::string& flag) {
  try {
    write_file_atomically(path, text);
  } catch (const UserError& e) {
    throw UserError(flag + ": " + e.what());
  }
  fs::permissions(path, fs::perms::owner_exec | fs::perms::group_exec | fs::perms::others_exec,
                  fs::perm_options::add);
}

// Runs `sbatch --parsable SCRIPT` and returns the job id (sbatch's own errors reach stderr unchanged).
std::string run_sbatch(const std::string& script_path) {
  const std::string command = "sbatch --parsable " + shell_quote(script_path);
  std::FILE* pipe = popen(command.c_str(), "r");
  FT_USER_CHECK(pipe != nullptr, "--submit: cannot start sbatch");
  std::string output;
  char buffer[256];
  while (std::fgets(buffer, sizeof(buffer), pipe) != nullptr) output += buffer;
  const int status = pclose(pipe);
  const int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128;
  FT_USER_CHECK(code != 127, "--submit: sbatch not found on PATH (submit from a Slurm login node, or use "
                             "--output-script FILE and copy it there)");
  FT_USER_CHECK(code == 0, "--submit: sbatch refused the script (exit " << code << "; its message is above)");
  // --parsable prints "jobid" or "jobid;cluster".
  const std::string id = output.substr(0, output.find_first_of(";\n"));
  FT_USER_CHECK(!id.empty() && id.find_first_not_of("0123456789") == std::string::npos,
                "--submit: unexpected sbatch output '" << output << "'");
  return id;
}

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
  CommandLine cli(argv[0], "Render slurm/train.sbatch for a run config and node/GPU count; print it, write it, or "
                           "submit it with sbatch.");
  declare_config_flags(cli, "run config, Protobuf text format (checked now, before the queue wait)");
  cli.text("nodes", "nodes", "1")
      .text("gpus-per-node", "GPUs per node = ranks per node, one GPU each (GPU jobs)")
      .toggle("cpu", "CPU-only job: no GPUs requested; ranks per node from --tasks-per-node")
      .text("tasks-per-node", "ranks per node (--cpu jobs)")
      .text("cpus-per-task", "CPU cores per rank (LibTorch threads and loader workers; default 8 with GPUs, 1 with --cpu)")
      .text("time", "time limit, e.g. 12:00:00 or 1-00:00:00 (default: the script's 24:00:00)")
      .text("partition", "partition(s), e.g. gpu")
      .text("account", "account to charge")
      .text("array", "job array, e.g. 0-3 (one run directory per task: RUN_DIR/task-<id>, data.seed=<id>)")
      .text("launcher", "srun (srun --mpi=pmix) | mpirun (Open MPI inside the allocation)", "srun")
      .text("output-script", "write the script to FILE instead of printing it")
      .toggle("submit", "submit the script with sbatch and print the job id")
      .examples("  facetrain submit --config configs/vit-fashion-mnist.pbtxt --nodes 2 --gpus-per-node 4 --submit\n"
                "  facetrain submit --config configs/vit-fashion-mnist.pbtxt --cpu --tasks-per-node 2 "
                "--output-script job.sbatch");
  if (!cli.parse(argc, argv)) return 0;

  // 1. The config: it must exist and parse with its overrides, as `facetrain train` will read it.
  const std::string config_arg = cli.get("config");
  FT_USER_CHECK(fs::is_regular_file(config_arg), "--config " << config_arg << ": no such file");
  const std::vector<std::string> sets = cli.all("set");
  const proto::RunConfig config = config_from_flags(cli);

  // 2. The resources: one rank per GPU, or --cpu with an explicit rank count.
  const bool cpu = cli.given("cpu");
  SbatchSettings s;
  s.gpus = !cpu;
  s.nodes = count_flag(cli, "nodes", 1);
  if (cpu) {
    FT_USER_CHECK(!cli.given("gpus-per-node"), "--gpus-per-node: not with --cpu (use --tasks-per-node for ranks per node)");
    FT_USER_CHECK(cli.given("tasks-per-node"), "--tasks-per-node R is required with --cpu (ranks per node)");
    s.tasks_per_node = count_flag(cli, "tasks-per-node", 1);
  } else {
    FT_USER_CHECK(!cli.given("tasks-per-node"), "--tasks-per-node: only with --cpu (GPU jobs run one rank per GPU: "
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
  s.launcher = cli.get("launcher");
  FT_USER_CHECK(s.launcher == "srun" || s.launcher == "mpirun",
                "--launcher " << s.launcher << ": expected srun or mpirun");

  // 3. The knobs: absolute paths, since the job may start in another directory than this command.
  s.config = absolute_path(config_arg);
  s.facetrain = this_binary();
  s.run_dir = absolute_path(config.logging().run_dir());
  s.sets = sets;
  s.job_name = job_name_for(config, config_arg);
  std::string provenance = "rendered by:";
  for (int i = 0; i < argc; ++i) provenance += " " + (i == 0 ? std::string(argv[0]) : shell_quote(argv[i]));
  s.provenance = provenance;
  if (!fs::exists(config.data().store())) {
    std::cerr << "warning: data.store " << config.data().store()
              << " does not exist here; the job fails unless the compute nodes see it\n";
  }

  // 4. Print, write, submit.
  const std::string script = render_sbatch_script(train_sbatch_template(), s);
  std::string script_path;
  if (cli.given("output-script")) {
    script_path = cli.get("output-script");
    write_file(script_path, script, "--output-script");
    std::cerr << "wrote " << script_path << "\n";
  } else {
    std::cout << script << std::flush;
  }
  if (cli.given("submit")) {
    bool temporary = false;
    if (script_path.empty()) {
      char name[] = "/tmp/facetrain-submit-XXXXXX";
      const int fd = mkstemp(name);
      FT_USER_CHECK(fd >= 0, "--submit: cannot create a temporary file in /tmp");
      close(fd);
      script_path = name;
      temporary = true;
      write_file(script_path, script, "--submit");
    }
    std::string id;
    try {
      id = run_sbatch(script_path);
    } catch (...) {
      if (temporary) fs::remove(script_path);
      throw;
    }
    if (temporary) fs::remove(script_path);
    std::cout << "Submitted batch job " << id << std::endl;
  }
  return 0;
}

}  // namespace facetrain
