// `facetrain doctor RUN_DIR`: reads every rank's collective flight ring (RUN_DIR/flight/rank-R.ring, written
// as the job runs: comm/flight_recorder.h) and says where the ranks diverged — the first collective not
// every rank completed, who was in it, and each missing rank's last collective — of the newest attempt only
// (a resume on fewer ranks leaves the rings of the others behind), with which ranks' processes are gone.
// Works on a running job, a hung one and a dead one alike. One process, no MPI. `--trace` merges the ranks'
// --profile traces instead (trainer/step_profiler.h).
#include <cstdio>
#include <filesystem>

#include "comm/flight_recorder.h"
#include "launcher/commands/commands.h"
#include "launcher/flags.h"
#include "trainer/step_profiler.h"
#include "trainer/stragglers.h"

namespace facetrain {

int doctor_command(int argc, char** argv) {
  CommandLine cli(argv[0], "Say where the ranks of a run diverged, from their collective flight records.");
  cli.positional("run", "the run directory (logging.run_dir), or its flight/ folder");
  cli.toggle("trace",
             "instead: merge the ranks' --profile traces (RUN_DIR/profile/rank-R.trace.json) into "
             "RUN_DIR/profile/merged.trace.json, one track per rank");
  if (!cli.parse(argc, argv)) return 0;
  const std::filesystem::path run = cli.get("run");
  if (cli.given("trace")) {
    const std::filesystem::path profile = std::filesystem::is_directory(run / "profile") ? run / "profile" : run;
    std::printf("%s\n", merge_rank_traces(profile.string()).c_str());
    return 0;
  }
  const std::filesystem::path flight = std::filesystem::is_directory(run / "flight") ? run / "flight" : run;
  for (const std::string& line : diagnose_flight(read_flight_records(flight.string())))
    std::printf("%s\n", line.c_str());
  for (const std::string& line : slowest_ranks((flight.parent_path() / "ranks.jsonl").string()))
    std::printf("%s\n", line.c_str());
  return 0;
}

}  // namespace facetrain
