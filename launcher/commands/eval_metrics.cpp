// `facetrain eval metrics`: a classifier's loss, accuracy, precision/recall/F1 (per class and macro), ROC
// AUC with curve points and the confusion matrix on one split of a store (seed 001's metrics cell), written
// as metrics.json + predictions.csv and printed as a table. Ranks split the images; each is counted once.
#include <filesystem>

#include "comm/communicator.h"
#include "launcher/threads.h"
#include "core/error.h"
#include "core/log.h"
#include "eval/image_selection.h"
#include "launcher/commands/commands.h"
#include "launcher/flags.h"
#include "launcher/commands/flag_groups.h"
#include "eval/loaded_model.h"
#include "eval/classification.h"
#include "eval/files.h"
#include "runtime/setup_agreement.h"

namespace facetrain {

int eval_metrics_command(int argc, char** argv, ProcessContext& ctx) {
  const std::string program = argv[0];
  CommandLine cli(program,
                  "Classification metrics of a classifier checkpoint (ViT, MobileNetV2) on one split of a store.");
  declare_classifier_flags(cli, "HDF5 store to evaluate on", "test");
  cli.required("output", "directory for metrics.json and predictions.csv");
  declare_scoring_flags(cli);
  if (!cli.parse(argc, argv)) return 0;
  const std::string checkpoint = cli.get("checkpoint"), store_path = cli.get("store"), output = cli.get("output");
  const std::string split = cli.get("split");
  const int64_t batch = cli.integer("batch");
  const bool average_flips = flip_tta(cli);
  FT_USER_CHECK(batch > 0, "--batch must be > 0, got " << batch);
  apply_thread_flag(ctx, cli.integer("threads"));

  StoreReader store(store_path);
  const std::vector<int64_t> indices = select_store_indices(store, split, "--split");
  const LoadedModel model =
      load_model_for_eval(checkpoint, cli.get("model-config"), store.info(), ctx.device,
                          parse_model_weights(cli.get("weights"), "--weights"), model_flag_names());
  model.need<ImageClassifier>("a classifier");  // before the agreement: a wrong kind is one line
  log("eval metrics: " + model.source + " on " + std::to_string(indices.size()) + " " + split + " images of " +
      store_path + " (" + std::to_string(ctx.world_size) + " rank" + (ctx.world_size > 1 ? "s" : "") + ")");

  agree_setup_done(*ctx.comm);  // every rank's flags, files and model are good (else: one line, no abort)

  // (collective) every rank scores its slice; all rows arrive on every rank.
  const ClassifierScores scores = score_with_classifier(model, store_path, indices, batch, ctx, average_flips);
  const std::vector<std::string>& class_names = store.info().class_names;
  const ClassificationMetrics metrics =
      classification_metrics(scores.probabilities, scores.labels, scores.classes, scores.mean_loss);

  if (ctx.rank == 0) {  // (rank 0 only) files and the printed table
    const nlohmann::json context = {{"checkpoint", model.source},
                                    {"store", store_path},
                                    {"split", split},
                                    {"tta", average_flips ? "flip" : "none"}};
    const std::filesystem::path dir(output);
    write_text_file((dir / "metrics.json").string(),
                    metrics_json(metrics, scores, class_names, context).dump(2) + "\n");
    write_text_file((dir / "predictions.csv").string(), predictions_csv(scores, store.filenames(), class_names));
    log(metrics_table(metrics, class_names));
    log("eval metrics: wrote " + (dir / "metrics.json").string() + " and " + (dir / "predictions.csv").string());
  }
  ctx.comm->barrier();
  return 0;
}

}  // namespace facetrain
