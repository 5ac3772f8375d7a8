// Flag parsing shared by every subcommand: cxxopts errors and bad numbers become one-line UserErrors
// that name the flag (cxxopts' own "Argument 'x' failed to parse" does not say which flag).
#pragma once

#include <cstdint>
#include <string>

#include <cxxopts.hpp>

#include "core/error.h"

namespace facetrain {

inline cxxopts::ParseResult parse_flags(cxxopts::Options& options, int argc, char** argv) {
  cxxopts::ParseResult args;
  try {
    args = options.parse(argc, argv);
  } catch (const cxxopts::exceptions::exception& e) {
    throw UserError(std::string(argv[0]) + ": " + e.what());
  }
  FT_USER_CHECK(args.unmatched().empty(), argv[0] << ": unexpected argument '" << args.unmatched().front() << "'");
  return args;
}

// Numeric flags are declared as strings and converted here so a bad value names its flag.
inline int64_t int_flag(const cxxopts::ParseResult& args, const std::string& name) {
  const std::string text = args[name].as<std::string>();
  try {
    size_t used = 0;
    const long long value = std::stoll(text, &used);
    if (used == text.size()) return value;
  } catch (const std::logic_error&) {
  }
  throw UserError("--" + name + " '" + text + "' is not an integer");
}

inline double double_flag(const cxxopts::ParseResult& args, const std::string& name) {
  const std::string text = args[name].as<std::string>();
  try {
    size_t used = 0;
    const double value = std::stod(text, &used);
    if (used == text.size()) return value;
  } catch (const std::logic_error&) {
  }
  throw UserError("--" + name + " '" + text + "' is not a number");
}

}  // namespace facetrain
