// Every input a fuzz harness ever crashed on (tests/fuzz/regressions/<reader>/, one file each) goes through the
// same reader again: it must end in a UserError or in success, never another exception (tools/scripts/fuzz.sh
// adds the files; the sanitizer build finds the crashes, this plain build keeps them fixed).
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "tests/fuzz/readers.h"

namespace facetrain::fuzz {
namespace {

namespace fs = std::filesystem;

using Reader = void (*)(const uint8_t*, size_t, const std::string&);

void replay(const std::string& reader_name, Reader reader) {
  const char* source = std::getenv("FACETRAIN_SOURCE_DIR");
  ASSERT_NE(source, nullptr) << "FACETRAIN_SOURCE_DIR is not set (ctest sets it)";
  const fs::path dir = fs::path(source) / "tests/fuzz/regressions" / reader_name;
  std::vector<fs::path> files;
  if (fs::is_directory(dir))
    for (const auto& e : fs::directory_iterator(dir))
      if (e.is_regular_file() && e.path().filename() != "README.md") files.push_back(e.path());
  std::sort(files.begin(), files.end());
  static const std::string scratch = make_scratch_dir();
  for (const auto& file : files) {
    std::ifstream in(file, std::ios::binary);
    const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    try {
      reader(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), scratch);
    } catch (const std::exception& e) {
      ADD_FAILURE() << file.string() << ": not a UserError: " << e.what();
    }
  }
  std::printf("%s: %zu regression inputs replayed\n", reader_name.c_str(), files.size());
}

TEST(FuzzRegressions, Safetensors) { replay("safetensors", read_safetensors_input); }
TEST(FuzzRegressions, Store) { replay("store", read_store_input); }
TEST(FuzzRegressions, Checkpoint) { replay("checkpoint", read_checkpoint_input); }

}  // namespace
}  // namespace facetrain::fuzz
