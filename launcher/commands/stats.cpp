// `facetrain stats FILE`: the command line of tools/stats.h (counts, class weights, mean/std of a store).
#include "core/error.h"
#include "core/log.h"
#include "launcher/commands/commands.h"
#include "launcher/flags.h"
#include "tools/stats.h"

namespace facetrain {

int stats_command(int argc, char** argv) {
  cxxopts::Options options(argv[0], "Counts, class weights, shape and train mean/std of a store.");
  options.add_options()
      ("file", "the HDF5 store", cxxopts::value<std::string>())
      ("json", "print JSON instead of a table")
      ("h,help", "show this help");
  options.parse_positional({"file"});
  options.positional_help("FILE");
  const cxxopts::ParseResult args = parse_flags(options, argc, argv);
  if (args.count("help")) {
    log(options.help());
    return 0;
  }
  FT_USER_CHECK(args.count("file"), argv[0] << ": FILE (an HDF5 store) is required");
  const StoreStats stats = compute_store_stats(args["file"].as<std::string>());
  log(args.count("json") ? stats_json(stats) : format_stats_table(stats));
  return 0;
}

}  // namespace facetrain
