// Job paths, and delivering a rendered batch script: stdout, a file, or sbatch (see submit.h).
#include "slurm/submit.h"

#include <sys/wait.h>
#include <unistd.h>

#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>

#include "core/atomic_file.h"
#include "core/error.h"
#include "slurm/sbatch_script.h"

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

void write_file(const std::string& path, const std::string& text, const std::string& what) {
  try {
    write_file_atomically(path, text);
  } catch (const UserError& e) {
    throw UserError(what + ": " + e.what());
  }
  fs::permissions(path, fs::perms::owner_exec | fs::perms::group_exec | fs::perms::others_exec, fs::perm_options::add);
}

// Runs `sbatch --parsable SCRIPT` and returns the job id (sbatch's own errors reach stderr unchanged).
std::string run_sbatch(const std::string& script_path, const ScriptDeliveryNames& names) {
  const std::string command = "sbatch --parsable " + shell_quote(script_path);
  std::FILE* pipe = popen(command.c_str(), "r");
  FT_USER_CHECK(pipe != nullptr, names.submit << ": cannot start sbatch");
  std::string output;
  char buffer[256];
  while (std::fgets(buffer, sizeof(buffer), pipe) != nullptr) output += buffer;
  const int status = pclose(pipe);
  const int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128;
  FT_USER_CHECK(code != 127, names.submit << ": sbatch not found on PATH (submit from a Slurm login node, or use "
                                          << names.output_script << " FILE and copy it there)");
  FT_USER_CHECK(code == 0, names.submit << ": sbatch refused the script (exit " << code << "; its message is above)");
  // --parsable prints "jobid" or "jobid;cluster".
  const std::string id = output.substr(0, output.find_first_of(";\n"));
  FT_USER_CHECK(!id.empty() && id.find_first_not_of("0123456789") == std::string::npos,
                names.submit << ": unexpected sbatch output '" << output << "'");
  return id;
}

}  // namespace

void set_job_paths(SbatchSettings* s, const proto::RunConfig& config, const std::string& config_path,
                   const std::vector<std::string>& sets, const std::vector<std::string>& command_line) {
  s->config = absolute_path(config_path);
  s->facetrain = this_binary();
  s->run_dir = absolute_path(config.logging().run_dir());
  s->sets = sets;
  s->job_name = job_name_for(config, config_path);
  std::string provenance = "rendered by:";
  for (size_t i = 0; i < command_line.size(); ++i)
    provenance += " " + (i == 0 ? command_line[i] : shell_quote(command_line[i]));
  s->provenance = provenance;
  if (!fs::exists(config.data().store())) {
    std::cerr << "warning: data.store " << config.data().store()
              << " does not exist here; the job fails unless the compute nodes see it\n";
  }
}

void deliver_sbatch_script(const std::string& script, const std::string& output_script, bool submit,
                           const ScriptDeliveryNames& names) {
  std::string script_path = output_script;
  if (!script_path.empty()) {
    write_file(script_path, script, names.output_script);
    std::cerr << "wrote " << script_path << "\n";
  } else {
    std::cout << script << std::flush;
  }
  if (submit) {
    bool temporary = false;
    if (script_path.empty()) {
      char name[] = "/tmp/facetrain-submit-XXXXXX";
      const int fd = mkstemp(name);
      FT_USER_CHECK(fd >= 0, names.submit << ": cannot create a temporary file in /tmp");
      close(fd);
      script_path = name;
      temporary = true;
      write_file(script_path, script, names.submit);
    }
    std::string id;
    try {
      id = run_sbatch(script_path, names);
    } catch (...) {
      if (temporary) fs::remove(script_path);
      throw;
    }
    if (temporary) fs::remove(script_path);
    std::cout << "Submitted batch job " << id << std::endl;
  }
}

}  // namespace facetrain
