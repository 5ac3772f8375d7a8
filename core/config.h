// Loading the run config (core/config.proto, Protobuf text format) with `--set field.path=value`
// overrides and validation. Every error is a UserError naming the file, line and field, or the flag.
#pragma once

#include <string>
#include <vector>

#include "core/config.pb.h"

namespace facetrain {

// Parses `path`, applies `overrides` ("a.b.c=value", in order) and validates. Throws UserError.
proto::RunConfig load_run_config(const std::string& path, const std::vector<std::string>& overrides);
// Applies one "field.path=value" override; `what` names it in errors (e.g. "--set optimizer.lr=x").
void apply_override(proto::RunConfig* config, const std::string& assignment);
// Checks required fields and value ranges; `source` names the file in errors.
void validate_run_config(const proto::RunConfig& config, const std::string& source);
std::string to_text(const proto::RunConfig& config);

}  // namespace facetrain
