// The subcommand table of the facetrain binary: name, one-line summary, whether it runs on MPI ranks, and
// the function that runs it (one file per subcommand in launcher/commands/).
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "runtime/process_context.h"

namespace facetrain {

struct Subcommand {
  std::string name;  // "ingest", "bench loader", "eval metrics", ...
  std::string summary;
  std::function<int(int, char**)> run;                            // plain command, no MPI
  std::function<int(int, char**, ProcessContext&)> run_on_ranks;  // MPI started, process placed
};

std::vector<Subcommand> all_subcommands();

}  // namespace facetrain
