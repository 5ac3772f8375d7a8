// libFuzzer harness of the store reader (readers.h): a malformed input may end in facetrain::UserError only.
#include <cstdio>
#include <cstdlib>
#include <exception>

#include "tests/fuzz/readers.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string scratch = facetrain::fuzz::make_scratch_dir();
  try {
    facetrain::fuzz::read_store_input(data, size, scratch);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "fuzz_store: not a UserError: %s\n", e.what());
    std::abort();
  } catch (...) {
    std::fprintf(stderr, "fuzz_store: a non-std exception escaped\n");
    std::abort();
  }
  return 0;
}
