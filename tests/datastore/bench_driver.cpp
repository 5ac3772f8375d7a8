// Development driver for `bench loader` while the facetrain binary is not built (FACETRAIN_LEAD_BUILD
// off): datastore_bench FILE [flags] runs bench_loader_command. Not a test.
#include <cstdio>
#include <exception>
#include <string>

#include "common/error.h"
#include "datastore/commands.h"

int main(int argc, char** argv) {
  std::string name = "facetrain bench loader";
  argv[0] = name.data();
  try {
    return facetrain::bench_loader_command(argc, argv);
  } catch (const facetrain::UserError& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
}
