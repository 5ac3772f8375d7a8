// `facetrain stats FILE`: the command line of tools/stats.h (counts, class weights, mean/std of a store).
#include "core/error.h"
#include "core/log.h"
#include "launcher/commands/commands.h"
#include "launcher/flags.h"
#include "tools/stats.h"

namespace facetrain {

int stats_command(int argc, char** argv) {
  CommandLine cli(argv[0], "Counts, class weights, shape and train mean/std of a store.");
  cli.positional("file", "the HDF5 store").toggle("json", "print JSON instead of a table");
  if (!cli.parse(argc, argv)) return 0;
  const StoreStats stats = compute_store_stats(cli.get("file"));
  log(cli.given("json") ? stats_json(stats) : format_stats_table(stats));
  return 0;
}

}  // namespace facetrain
