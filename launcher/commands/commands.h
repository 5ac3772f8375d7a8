// Subcommands implemented by the trainer library (wired into the binary by launcher/commands.cpp).
#pragma once

#include "core/process_context.h"

namespace facetrain {

// facetrain train --config FILE [--set a.b=v ...] [--resume auto|none|PATH] [--threads N]
int train_command(int argc, char** argv, ProcessContext& ctx);
// facetrain export --checkpoint FILE --output FILE.safetensors
int export_command(int argc, char** argv);
// facetrain bench step --config FILE [--set a.b=v ...] [--steps N] [--warmup N] [--image/--channels/--classes]
int bench_step_command(int argc, char** argv, ProcessContext& ctx);

}  // namespace facetrain
