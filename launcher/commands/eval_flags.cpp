// Flag handling shared by the eval subcommands (see eval_flags.h).
#include "launcher/commands/eval_flags.h"

#include <torch/torch.h>

#include "core/error.h"

namespace facetrain {

std::string required_flag(const cxxopts::ParseResult& args, const std::string& name, const std::string& program,
                          const std::string& what) {
  FT_USER_CHECK(args.count(name) && !args[name].as<std::string>().empty(),
                program << ": --" << name << " is required (" << what << ")");
  return args[name].as<std::string>();
}

bool flip_tta_flag(const cxxopts::ParseResult& args) {
  const std::string tta = args["tta"].as<std::string>();
  FT_USER_CHECK(tta == "none" || tta == "flip", "--tta must be none or flip, got '" << tta << "'");
  return tta == "flip";
}

int parse_class_flag(const StoreInfo& store, const std::string& value) {
  const int classes = static_cast<int>(store.class_names.size());
  for (int c = 0; c < classes; ++c) {
    if (store.class_names[c] == value) return c;
  }
  try {
    size_t used = 0;
    const long long index = std::stoll(value, &used);
    if (used == value.size() && index >= 0 && index < classes) return static_cast<int>(index);
  } catch (const std::logic_error&) {
  }
  std::string names;
  for (int c = 0; c < classes; ++c) names += (c ? ", " : "") + std::to_string(c) + "=" + store.class_names[c];
  throw UserError("--class '" + value + "' is neither a class name nor an index of the store's classes (" + names +
                  ")");
}

}  // namespace facetrain
