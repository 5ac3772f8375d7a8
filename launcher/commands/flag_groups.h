// Flags that several subcommands share, declared and read in one place so they mean the same everywhere:
// the run config (--config, --set), the model an eval command loads (--checkpoint, --model-config), the
// scoring knobs of the classifier commands (--batch, --tta, --threads) and the image selection of the visual
// commands (--split, --indices, --mined, --count, bound to a VisualRequest).
#pragma once

#include <string>

#include "core/config.pb.h"
#include "datastore/store.h"
#include "eval/image_selection.h"
#include "eval/loaded_model.h"
#include "launcher/flags.h"

namespace facetrain {

// --config FILE (required) and --set field=value (repeatable): the run config, loaded, overridden and
// validated by config_from_flags (UserError naming the file, line, field or override).
void declare_config_flags(CommandLine& cli, const std::string& config_help);
proto::RunConfig config_from_flags(const CommandLine& cli);

// --output (required), --val-fraction, --test-fraction, --seed, --threads, --overwrite, --quiet: the flags of
// the commands that write a store (ingest, synth). `fraction_default` "" leaves the fractions to the source.
void declare_store_writer_flags(CommandLine& cli, const std::string& fraction_default, const std::string& threads_help);

// --checkpoint (required: a .ckpt, a run directory or a .safetensors file) and --model-config.
void declare_model_flags(CommandLine& cli, const std::string& checkpoint_help);

// The model flags, --store (required) and --split of the classifier commands (eval metrics, eval mine).
void declare_classifier_flags(CommandLine& cli, const std::string& store_help, const std::string& default_split);
// How load_model_for_eval names the model flags and --store in its errors.
ModelInputNames model_flag_names();

// --threads: LibTorch threads per rank, 0 keeping the launcher's per-rank choice (launcher/threads.h).
void declare_threads_flag(CommandLine& cli);

// --batch, --tta none|flip and --threads of eval metrics and eval mine.
void declare_scoring_flags(CommandLine& cli);
// --tta: true for flip (average each image's and its mirror image's probabilities); UserError otherwise.
bool flip_tta(const CommandLine& cli);

// --threads of the commands whose outputs must not depend on the rank count (eval attention, eval morph).
constexpr char kBitwiseThreadsHelp[] =
    "compute threads per rank; the default 1 makes the outputs bitwise identical on any number of ranks (more "
    "threads change float rounding); 0: the launcher's per-core choice";

// The flags of the visual commands (eval attention, eval morph), bound to `request`: the model, --store,
// --output, the image selection (--split, --indices, --mined, --count), --scale; and --threads
// (kBitwiseThreadsHelp). The request's values are the defaults. parse() checks the selection and --scale and
// the request names these flags in the library's errors.
void declare_visual_flags(CommandLine& cli, VisualRequest* request, const std::string& checkpoint_help);

// A class given by name (exact match of the store's class_names) or by index. Throws UserError naming
// --class and listing the store's classes.
int parse_class_flag(const StoreInfo& store, const std::string& value);

}  // namespace facetrain
