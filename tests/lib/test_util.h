// Small helpers many tests share: a file's whole content, and the message of the UserError a call throws.
#pragma once

#include <fstream>
#include <functional>
#include <sstream>
#include <string>

#include "core/error.h"

namespace facetrain::testing {

// The bytes of `path` ("" when it cannot be read).
inline std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// The what() of the UserError `f` throws, or "" when it throws none.
inline std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const UserError& e) {
    return e.what();
  }
  return "";
}

}  // namespace facetrain::testing
