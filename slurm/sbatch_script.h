// Rendering slurm/train.sbatch for one run: its #SBATCH resource lines and its knob lines are rewritten,
// everything else is kept byte for byte, so `facetrain submit` and `sbatch slurm/train.sbatch` run the same
// script. The template text is embedded at build time from slurm/train.sbatch (one copy of the script).
#pragma once

#include <string>
#include <vector>

namespace facetrain {

// What changes between runs. Empty strings keep the template's line as it is.
struct SbatchSettings {
  std::string provenance;         // a comment line added under the shebang, e.g. the submit command
  std::string job_name;           // --job-name
  int nodes = 1;                  // --nodes
  int tasks_per_node = 1;         // --ntasks-per-node: ranks per node (= GPUs per node with gpus)
  bool gpus = true;               // true: --gpus-per-node=tasks_per_node; false: the line is dropped (CPU-only)
  int cpus_per_task = 1;          // --cpus-per-task
  std::string time;               // --time
  std::string partition;          // --partition (added when set)
  std::string account;            // --account (added when set)
  std::string array;              // --array (added when set; the output name then uses %A_%a)
  std::string config;             // knob CONFIG
  std::string facetrain;          // knob FACETRAIN (the binary)
  std::string launcher;           // knob LAUNCHER: srun | mpirun
  std::string run_dir;            // knob RUN_DIR
  std::vector<std::string> sets;  // knob SETS: field=value overrides
  std::string preemption_signal;  // knob PREEMPT_SIGNAL and --signal=B:<it>@120 (USR1 | USR2 | TERM)
};

// slurm/train.sbatch as it was when this binary was built.
const std::string& train_sbatch_template();

// Returns `template_text` with the resource lines and knobs of `settings`. Throws std::runtime_error when
// the template lacks a line it must rewrite (the template and this renderer are out of step).
std::string render_sbatch_script(const std::string& template_text, const SbatchSettings& settings);

// `word` quoted for bash: unchanged when it holds only safe characters, else in single quotes.
std::string shell_quote(const std::string& word);

// Flag checks shared by `facetrain submit`; each throws UserError naming `flag`.
// Slurm time limits: MM, MM:SS, HH:MM:SS, D-HH, D-HH:MM, D-HH:MM:SS (minutes and seconds below 60).
void check_time_limit(const std::string& value, const std::string& flag);
// Job array specs: comma-separated N, N-M or N-M:S items (N <= M, S >= 1), optionally %K (K >= 1).
void check_array_spec(const std::string& value, const std::string& flag);
// Partition and account names: letters, digits and _ . - (partition lists also ,).
void check_slurm_name(const std::string& value, const std::string& flag, bool allow_list);

}  // namespace facetrain
