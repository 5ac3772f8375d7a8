// The libFuzzer harness of one reader, compiled once per reader with FACETRAIN_FUZZ_INPUT naming its function
// in readers.h (read_store_input, ...): a malformed input may end in facetrain::UserError only.
#include <cstdio>
#include <cstdlib>
#include <exception>

#include "tests/fuzz/readers.h"

#define FACETRAIN_FUZZ_STRING2(x) #x
#define FACETRAIN_FUZZ_STRING(x) FACETRAIN_FUZZ_STRING2(x)

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string scratch = facetrain::fuzz::make_scratch_dir();
  const char* reader = FACETRAIN_FUZZ_STRING(FACETRAIN_FUZZ_INPUT);
  try {
    facetrain::fuzz::FACETRAIN_FUZZ_INPUT(data, size, scratch);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: not a UserError: %s\n", reader, e.what());
    std::abort();
  } catch (...) {
    std::fprintf(stderr, "%s: a non-std exception escaped\n", reader);
    std::abort();
  }
  return 0;
}
