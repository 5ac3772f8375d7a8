// Flags shared by several subcommands (see flag_groups.h).
#include "launcher/commands/flag_groups.h"

#include "core/config.h"
#include "models/model_spec.h"
#include "core/error.h"

namespace facetrain {
namespace {
constexpr char kWeightsHelp[] =
    "raw | ema: the trained weights, or their moving average (from a run with an ema section)";
}  // namespace

void declare_config_flags(CommandLine& cli, const std::string& config_help) {
  cli.required("config", config_help).repeated("set", "override a config field: --set optimizer.lr=3e-4");
}

proto::RunConfig config_from_flags(const CommandLine& cli) {
  proto::RunConfig config = load_run_config(cli.get("config"), cli.all("set"), "--set");
  check_model_config(config, cli.get("config"));
  return config;
}

void declare_store_writer_flags(CommandLine& cli, const std::string& fraction_default,
                                const std::string& threads_help) {
  const std::string fallback = fraction_default.empty()
                                   ? " (default 0.1; idx: val 0.1 carved from the train file, the t10k files are test)"
                                   : "";
  cli.required("output", "HDF5 store to write (written as FILE.partial, renamed when complete)")
      .text("val-fraction", "validation fraction for sources without their own partition" + fallback, fraction_default)
      .text("test-fraction", "test fraction for sources without their own partition" + fallback, fraction_default)
      .text("seed", "seed of the split (and, for synth, of the images: same seed, same bytes)", "0")
      .text("threads", threads_help, "0")
      .toggle("overwrite", "replace an existing output")
      .toggle("quiet", "no progress lines or summary");
}

void declare_model_flags(CommandLine& cli, const std::string& checkpoint_help) {
  cli.required("checkpoint", checkpoint_help)
      .text("model-config", "run config (.pbtxt) describing the model; required with a .safetensors file")
      .text("weights", kWeightsHelp, "raw");
}

void declare_classifier_flags(CommandLine& cli, const std::string& store_help, const std::string& default_split) {
  declare_model_flags(cli, "a .ckpt, a run directory (its newest valid checkpoint) or a .safetensors file");
  cli.required("store", store_help).text("split", "train | val | test | all", default_split);
}

ModelInputNames model_flag_names() { return ModelInputNames{"--checkpoint", "--store", "--weights"}; }

void declare_threads_flag(CommandLine& cli) {
  cli.text("threads", "LibTorch threads per rank (0: launcher default)", "0");
}

void declare_scoring_flags(CommandLine& cli) {
  cli.text("batch", "images per forward pass on each rank", "256")
      .text("tta", "test-time augmentation: none | flip (mean of the image's and its mirror's probabilities)", "none");
  declare_threads_flag(cli);
}

bool flip_tta(const CommandLine& cli) {
  const std::string tta = cli.get("tta");
  FT_USER_CHECK(tta == "none" || tta == "flip", "--tta must be none or flip, got '" << tta << "'");
  return tta == "flip";
}

void declare_visual_flags(CommandLine& cli, VisualRequest* request, const std::string& checkpoint_help) {
  ImageSelection& selection = request->selection;
  request->checkpoint_name = "--checkpoint";
  request->store_name = "--store";
  request->weights_name = "--weights";
  selection.indices_name = "--indices";
  selection.mined_name = "--mined";
  selection.split_name = "--split";
  cli.bind_required("checkpoint", &request->checkpoint, checkpoint_help)
      .bind("model-config", &request->model_config,
            "run config (.pbtxt) of the model; required with a .safetensors file")
      .bind("weights", &request->weights, kWeightsHelp)
      .bind_required("store", &request->store, "HDF5 store with the images")
      .bind_required("output", &request->output, "output directory");
  cli.bind("split", &selection.split, "train | val | test | all: where --count takes its first images")
      .bind("indices", &selection.indices,
            "store indices in order, e.g. 0,5,9 (as predictions.csv / mined.csv list them)")
      .bind("mined", &selection.mined,
            "CSV with an \"index\" column (eval mine's mined.csv): its images, at most --count")
      .bind("count", &selection.count, "number of images (first of --split, or of --mined)");
  cli.bind("scale", &request->scale, "integer display upscale of the images (0: automatic, >= 128 px)")
      .text("threads", kBitwiseThreadsHelp, "1")
      .after_parse([request](const CommandLine& parsed) {
        ImageSelection& s = request->selection;
        s.count_given = parsed.given("count");
        FT_USER_CHECK(s.indices.empty() || s.mined.empty(), "--indices and --mined: give one of them, not both");
        FT_USER_CHECK(!(s.count_given && !s.indices.empty()),
                      "--indices and --count: give one of them (--indices already says which images)");
        FT_USER_CHECK(s.count > 0, "--count must be >= 1, got " << s.count);
        FT_USER_CHECK(request->scale >= 0 && request->scale <= kMaxDisplayScale,
                      "--scale must be in [0, " << kMaxDisplayScale << "] (0: automatic), got " << request->scale);
      });
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
