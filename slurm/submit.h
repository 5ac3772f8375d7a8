// What `facetrain submit` does after its flags are checked: the job's absolute paths, name and provenance
// line in the settings (the job may start in another directory than the submitting shell), and the rendered
// script printed, written (atomically, executable) or handed to `sbatch --parsable`.
#pragma once

#include <string>
#include <vector>

#include "core/config.pb.h"
#include "slurm/sbatch_script.h"

namespace facetrain {

// Sets config, facetrain (this binary), run_dir, sets, job_name and provenance (`command_line`, quoted) of
// `settings`; warns on stderr when data.store does not exist here.
void set_job_paths(SbatchSettings* settings, const proto::RunConfig& config, const std::string& config_path,
                   const std::vector<std::string>& sets, const std::vector<std::string>& command_line);

// How deliver_sbatch_script's errors name the script file and the submission (the launcher passes its flags).
struct ScriptDeliveryNames {
  std::string output_script = "output script", submit = "sbatch submission";
};

// Prints the script (no `output_script`) or writes it there; with `submit`, runs sbatch on it (a temporary
// file when not written) and prints "Submitted batch job <id>". Throws UserError starting with the name of
// the output script or the submission (sbatch's own errors reach stderr unchanged).
void deliver_sbatch_script(const std::string& script, const std::string& output_script, bool submit,
                           const ScriptDeliveryNames& names = {});

}  // namespace facetrain
