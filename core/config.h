// Loading the run config (core/config.proto, Protobuf text format) with `field.path=value` overrides and
// validation. Every error is a UserError naming the file, line and field, or the override.
#pragma once

#include <string>
#include <vector>

#include "core/config.pb.h"

namespace facetrain {

// Parses `path`, applies `overrides` ("a.b.c=value", in order; `override_label` as in apply_override) and
// validates. Throws UserError.
proto::RunConfig load_run_config(const std::string& path, const std::vector<std::string>& overrides,
                                 const std::string& override_label = "override");
// Applies one "field.path=value" override. Errors start with `label` and the assignment ("override
// optimizer.lr=x: ..."); the launcher passes its flag as the label.
void apply_override(proto::RunConfig* config, const std::string& assignment, const std::string& label = "override");
// Checks required fields and value ranges; `source` names the file in errors.
void validate_run_config(const proto::RunConfig& config, const std::string& source);
std::string to_text(const proto::RunConfig& config);

}  // namespace facetrain
