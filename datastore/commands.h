// Subcommands implemented in datastore/ (wired into the facetrain binary by launcher/commands.cpp).
#pragma once

namespace facetrain {

// `facetrain bench loader FILE`: images/s of raw reads, normalized batches and fully augmented batches
// for one rank, beside memcpy bandwidth, as a table of medians. argv[0] is "facetrain bench loader".
int bench_loader_command(int argc, char** argv);

}  // namespace facetrain
