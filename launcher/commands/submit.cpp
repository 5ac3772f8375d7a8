// `facetrain submit`: checks the flags and the run config (before the queue wait, not after it), renders
// slurm/train.sbatch for them, prints it or writes it to a file, and with --submit hands it to sbatch.
#include <sys/wait.h>
#include <unistd.h>

#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <cxxopts.hpp>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include "core/atomic_file.h"
#include "core/error.h"
#include "launcher/commands/commands.h"
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
int count_flag(const cxxopts::ParseResult& args, const std::string& name, int fallback) {
  if (!args.count(name)) return fallback;
  const std::string text = args[name].as<std::string>();
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
  cxxopts::Options options(argv[0], "Render slurm/train.sbatch for a run config and node/GPU count; print it, "
                                    "write it, or submit it with sbatch.");
  options.add_options()
      ("config", "run config, Protobuf text format (checked now, before the queue wait)", cxxopts::value<std::string>())
      ("set", "override a config field for this job: --set optimizer.lr=3e-4 (repeatable)",
       cxxopts::value<std::vector<std::string>>())
      ("nodes", "nodes", cxxopts::value<std::string>()->default_value("1"))
      ("gpus-per-node", "GPUs per node = ranks per node, one GPU each (GPU jobs)", cxxopts::value<std::string>())
      ("cpu", "CPU-only job: no GPUs requested; ranks per node from --tasks-per-node")
      ("tasks-per-node", "ranks per node (--cpu jobs)", cxxopts::value<std::string>())
      ("cpus-per-task", "CPU cores per rank (LibTorch threads and loader workers; default 8 with GPUs, 1 with --cpu)",
       cxxopts::value<std::string>())
      ("time", "time limit, e.g. 12:00:00 or 1-00:00:00 (default: the script's 24:00:00)", cxxopts::value<std::string>())
      ("partition", "partition(s), e.g. gpu", cxxopts::value<std::string>())
      ("account", "account to charge", cxxopts::value<std::string>())
      ("array", "job array, e.g. 0-3 (one run directory per task: RUN_DIR/task-<id>, data.seed=<id>)",
       cxxopts::value<std::string>())
      ("launcher", "srun (srun --mpi=pmix) | mpirun (Open MPI inside the allocation)",
       cxxopts::value<std::string>()->default_value("srun"))
      ("output-script", "write the script to FILE instead of printing it", cxxopts::value<std::string>())
      ("submit", "submit the script with sbatch and print the job id")
      ("h,help", "show this help");
  cxxopts::ParseResult args;
  try {
    args = options.parse(argc, argv);
  } catch (const cxxopts::exceptions::exception& e) {
    throw UserError(std::string(argv[0]) + ": " + e.what());
  }
  if (args.count("help")) {
    std::cout << options.help() << "\n"
              << "Examples:\n"
              << "  facetrain submit --config configs/vit-fashion-mnist.pbtxt --nodes 2 --gpus-per-node 4 --submit\n"
              << "  facetrain submit --config configs/vit-fashion-mnist.pbtxt --cpu --tasks-per-node 2 "
                 "--output-script job.sbatch\n";
    return 0;
  }
  FT_USER_CHECK(args.unmatched().empty(), argv[0] << ": unexpected argument '" << args.unmatched().front() << "'");

  // 1. The config: it must exist and parse with its overrides, as `facetrain train` will read it.
  FT_USER_CHECK(args.count("config"), "--config FILE is required (a run config, see configs/)");
  const std::string config_arg = args["config"].as<std::string>();
  FT_USER_CHECK(fs::is_regular_file(config_arg), "--config " << config_arg << ": no such file");
  const std::vector<std::string> sets =
      args.count("set") ? args["set"].as<std::vector<std::string>>() : std::vector<std::string>{};
  const proto::RunConfig config = load_run_config(config_arg, sets);

  // 2. The resources: one rank per GPU, or --cpu with an explicit rank count.
  const bool cpu = args.count("cpu") > 0;
  SbatchSettings s;
  s.gpus = !cpu;
  s.nodes = count_flag(args, "nodes", 1);
  if (cpu) {
    FT_USER_CHECK(!args.count("gpus-per-node"), "--gpus-per-node: not with --cpu (use --tasks-per-node for ranks per node)");
    FT_USER_CHECK(args.count("tasks-per-node"), "--tasks-per-node R is required with --cpu (ranks per node)");
    s.tasks_per_node = count_flag(args, "tasks-per-node", 1);
  } else {
    FT_USER_CHECK(!args.count("tasks-per-node"), "--tasks-per-node: only with --cpu (GPU jobs run one rank per GPU: "
                                                 "use --gpus-per-node)");
    FT_USER_CHECK(args.count("gpus-per-node"), "--gpus-per-node G is required (or --cpu --tasks-per-node R)");
    s.tasks_per_node = count_flag(args, "gpus-per-node", 1);
  }
  s.cpus_per_task = count_flag(args, "cpus-per-task", cpu ? 1 : 8);
  if (args.count("time")) {
    s.time = args["time"].as<std::string>();
    check_time_limit(s.time, "--time");
  }
  if (args.count("partition")) {
    s.partition = args["partition"].as<std::string>();
    check_slurm_name(s.partition, "--partition", true);
  }
  if (args.count("account")) {
    s.account = args["account"].as<std::string>();
    check_slurm_name(s.account, "--account", false);
  }
  if (args.count("array")) {
    s.array = args["array"].as<std::string>();
    check_array_spec(s.array, "--array");
  }
  s.launcher = args["launcher"].as<std::string>();
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
  if (args.count("output-script")) {
    script_path = args["output-script"].as<std::string>();
    write_file(script_path, script, "--output-script");
    std::cerr << "wrote " << script_path << "\n";
  } else {
    std::cout << script << std::flush;
  }
  if (args.count("submit")) {
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
