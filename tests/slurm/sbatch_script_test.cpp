// Tests of slurm/sbatch_script: rendering of the embedded slurm/train.sbatch (resource lines, knobs, quoting
// checked by running bash on the result) and the flag checks of `facetrain submit`.
#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>

#include "core/error.h"
#include "slurm/sbatch_script.h"

namespace facetrain {
namespace {

std::vector<std::string> sbatch_lines(const std::string& script) {
  std::vector<std::string> out;
  std::istringstream in(script);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("#SBATCH ", 0) == 0) out.push_back(line);
  }
  return out;
}

bool has_line(const std::string& script, const std::string& line) {
  return ("\n" + script).find("\n" + line + "\n") != std::string::npos;
}

// Runs `bash -c` on the script's knob block followed by `tail`, returns stdout.
std::string run_knobs(const std::string& script, const std::string& tail) {
  const size_t begin = script.find("\n# ---- knobs");
  const size_t end = script.find("\n# ------", begin + 1);
  EXPECT_NE(begin, std::string::npos);
  EXPECT_NE(end, std::string::npos);
  const std::string path = ::testing::TempDir() + "/knobs.sh";
  std::ofstream(path) << script.substr(begin, end - begin) << "\n" << tail << "\n";
  std::FILE* pipe = popen(("env -u FACETRAIN bash " + path).c_str(), "r");
  std::string out;
  std::array<char, 256> buf{};
  while (std::fgets(buf.data(), buf.size(), pipe) != nullptr) out += buf.data();
  EXPECT_EQ(pclose(pipe), 0);
  return out;
}

SbatchSettings cpu_settings() {
  SbatchSettings s;
  s.job_name = "tiny";
  s.nodes = 1;
  s.tasks_per_node = 2;
  s.gpus = false;
  s.cpus_per_task = 1;
  s.time = "00:10:00";
  s.config = "/data/my configs/it's.pbtxt";  // a space and a quote: must survive bash
  s.facetrain = "/opt/facetrain/bin/facetrain";
  s.launcher = "srun";
  s.run_dir = "/shared/runs/tiny";
  s.sets = {"optimizer.lr=0.001", "name=two words"};
  return s;
}

TEST(SbatchScript, TemplateIsTheEmbeddedTrainSbatch) {
  const std::string& t = train_sbatch_template();
  EXPECT_EQ(t.rfind("#!/bin/bash\n", 0), 0u);
  EXPECT_TRUE(has_line(t, "#SBATCH --signal=B:USR1@120"));
  EXPECT_TRUE(has_line(t, "#SBATCH --requeue"));
  EXPECT_TRUE(has_line(t, "#SBATCH --open-mode=append"));
  EXPECT_TRUE(has_line(t, "#SBATCH --gpus-per-node=4"));
  // The checked-in file and the embedded text are the same bytes.
  const char* source = std::getenv("FACETRAIN_SOURCE_DIR");
  ASSERT_NE(source, nullptr);
  std::ifstream in(std::string(source) + "/slurm/train.sbatch", std::ios::binary);
  std::stringstream file;
  file << in.rdbuf();
  EXPECT_EQ(file.str(), t);
}

TEST(SbatchScript, CpuVariantRewritesResourcesAndDropsTheGpuLine) {
  const std::string script = render_sbatch_script(train_sbatch_template(), cpu_settings());
  const auto lines = sbatch_lines(script);
  const std::vector<std::string> expected{
      "#SBATCH --job-name=tiny",   "#SBATCH --nodes=1",          "#SBATCH --ntasks-per-node=2",
      "#SBATCH --cpus-per-task=1", "#SBATCH --time=00:10:00",    "#SBATCH --signal=B:USR1@120",
      "#SBATCH --requeue",         "#SBATCH --open-mode=append", "#SBATCH --output=%x-%j.out"};
  EXPECT_EQ(lines, expected);
  // Everything outside the header and the knobs is the template's text.
  const std::string& t = train_sbatch_template();
  const std::string body_marker = "set -uo pipefail";
  EXPECT_EQ(script.substr(script.find(body_marker)), t.substr(t.find(body_marker)));
}

TEST(SbatchScript, GpuVariantWithArrayPartitionAccount) {
  SbatchSettings s = cpu_settings();
  s.gpus = true;
  s.nodes = 8;
  s.tasks_per_node = 4;
  s.cpus_per_task = 12;
  s.partition = "gpu,gpu-long";
  s.account = "proj42";
  s.array = "0-3%2";
  const auto lines = sbatch_lines(render_sbatch_script(train_sbatch_template(), s));
  const std::vector<std::string> expected{"#SBATCH --job-name=tiny",
                                          "#SBATCH --nodes=8",
                                          "#SBATCH --ntasks-per-node=4",
                                          "#SBATCH --gpus-per-node=4",
                                          "#SBATCH --cpus-per-task=12",
                                          "#SBATCH --time=00:10:00",
                                          "#SBATCH --signal=B:USR1@120",
                                          "#SBATCH --requeue",
                                          "#SBATCH --open-mode=append",
                                          "#SBATCH --output=%x-%A_%a.out",
                                          "#SBATCH --partition=gpu,gpu-long",
                                          "#SBATCH --account=proj42",
                                          "#SBATCH --array=0-3%2"};
  EXPECT_EQ(lines, expected);
}

TEST(SbatchScript, KnobsSurviveBashQuoting) {
  SbatchSettings s = cpu_settings();
  s.provenance = "rendered by: facetrain submit --config x";
  const std::string script = render_sbatch_script(train_sbatch_template(), s);
  EXPECT_EQ(script.rfind("#!/bin/bash\n# rendered by: facetrain submit --config x\n", 0), 0u);
  const std::string out = run_knobs(
      script, "printf '%s\\n' \"$CONFIG\" \"$FACETRAIN\" \"$LAUNCHER\" \"$RUN_DIR\" \"${#SETS[@]}\" \"${SETS[@]}\"");
  EXPECT_EQ(out,
            "/data/my configs/it's.pbtxt\n/opt/facetrain/bin/facetrain\nsrun\n/shared/runs/tiny\n2\n"
            "optimizer.lr=0.001\nname=two words\n");
}

TEST(SbatchScript, EmptySettingsKeepTheTemplateKnobs) {
  SbatchSettings s = cpu_settings();
  s.config.clear();
  s.facetrain.clear();
  s.run_dir.clear();
  s.sets.clear();
  const std::string script = render_sbatch_script(train_sbatch_template(), s);
  const std::string out = run_knobs(script, "printf '%s|' \"$CONFIG\" \"$FACETRAIN\" \"$RUN_DIR\" \"${#SETS[@]}\"");
  EXPECT_EQ(out, "|facetrain||0|");
}

TEST(SbatchScript, TemplateWithoutAKnobIsAnInternalError) {
  std::string t = train_sbatch_template();
  t.replace(t.find("\nRUN_DIR="), 9, "\nRUNDIR=");
  EXPECT_THROW(render_sbatch_script(t, cpu_settings()), std::runtime_error);
  EXPECT_THROW(render_sbatch_script("#SBATCH --nodes=1\n", cpu_settings()), std::runtime_error);
}

TEST(SbatchScript, ShellQuote) {
  EXPECT_EQ(shell_quote("runs/vit-1"), "runs/vit-1");
  EXPECT_EQ(shell_quote("a b"), "'a b'");
  EXPECT_EQ(shell_quote("it's"), "'it'\\''s'");
  EXPECT_EQ(shell_quote("$HOME"), "'$HOME'");
  EXPECT_EQ(shell_quote(""), "''");
}

TEST(SubmitFlags, TimeLimits) {
  for (const char* ok : {"02:30:00", "90", "10:00", "1-12", "1-12:30", "2-00:00:00", "00:00:01"}) {
    EXPECT_NO_THROW(check_time_limit(ok, "--time")) << ok;
  }
  for (const char* bad : {"", "2h", "1:60:00", "00:61", "1-24:00:00", "00:00:00", "-1", "1:2:3:4"}) {
    EXPECT_THROW(check_time_limit(bad, "--time"), UserError) << bad;
  }
  try {
    check_time_limit("2h", "--time");
  } catch (const UserError& e) {
    EXPECT_EQ(std::string(e.what()).rfind("--time 2h: ", 0), 0u) << e.what();
  }
}

TEST(SubmitFlags, ArraySpecs) {
  for (const char* ok : {"0-3", "0-15%4", "1,3,5", "0-10:2", "7", "0-3,8-9%1"}) {
    EXPECT_NO_THROW(check_array_spec(ok, "--array")) << ok;
  }
  for (const char* bad : {"", "3-0", "a", "0-3%", "0-3%0", "0-4:0", ",1", "1,", "1-", "0..3"}) {
    EXPECT_THROW(check_array_spec(bad, "--array"), UserError) << bad;
  }
}

TEST(SubmitFlags, Names) {
  EXPECT_NO_THROW(check_slurm_name("gpu-a100", "--partition", true));
  EXPECT_NO_THROW(check_slurm_name("gpu,cpu", "--partition", true));
  EXPECT_THROW(check_slurm_name("gpu,cpu", "--account", false), UserError);
  EXPECT_THROW(check_slurm_name("a b", "--partition", true), UserError);
  EXPECT_THROW(check_slurm_name("x;rm", "--account", false), UserError);
}

}  // namespace
// checkpoint.preemption_signal USR2: the batch script asks Slurm for USR2, forwards USR2 and requeues on it,
// and the ranks are told the same signal; SIGUSR1 appears nowhere to be claimed.
TEST(SbatchScript, PreemptionSignalRendersEverywhere) {
  SbatchSettings s;
  s.job_name = "tiny";
  s.time = "00:10:00";
  s.preemption_signal = "USR2";
  const std::string out = render_sbatch_script(train_sbatch_template(), s);
  EXPECT_TRUE(has_line(out, "#SBATCH --signal=B:USR2@120")) << out;
  EXPECT_FALSE(has_line(out, "#SBATCH --signal=B:USR1@120"));
  EXPECT_NE(out.find("\nPREEMPT_SIGNAL=USR2  #"), std::string::npos) << out;
  EXPECT_NE(out.find("--set \"checkpoint.preemption_signal=$PREEMPT_SIGNAL\""), std::string::npos);
}

}  // namespace facetrain
