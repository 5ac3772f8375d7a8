// Flag handling shared by the eval subcommands: cxxopts parsing with one-line UserErrors that name the
// flag (launcher/flags.h), required flags, the --split / --class / --threads values every command reads the
// same way.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <cxxopts.hpp>

#include "datastore/store.h"
#include "launcher/flags.h"
#include "core/process_context.h"

namespace facetrain {

// The value of string flag --name, or UserError "<program>: --name is required (<what>)".
std::string required_flag(const cxxopts::ParseResult& args, const std::string& name, const std::string& program,
                          const std::string& what);

// --tta: "none" (default) or "flip" (average each image's and its mirror image's probabilities). True for
// flip; UserError naming the flag otherwise.
bool flip_tta_flag(const cxxopts::ParseResult& args);

// A class given by name (exact match of the store's class_names) or by index. Throws UserError naming
// --class and listing the store's classes.
int parse_class_flag(const StoreInfo& store, const std::string& value);

}  // namespace facetrain
