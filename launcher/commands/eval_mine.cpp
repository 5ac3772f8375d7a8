// `facetrain eval mine` (seed 004): score every selected image of a store with a classifier, keep those
// whose probability for one class is at least a threshold, and write mined.csv (best first), a contact
// sheet of the hits and optionally a subset store of them. Ranks split the images; each is counted once.
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
#include "eval/mining.h"
#include "runtime/setup_agreement.h"

namespace facetrain {

int eval_mine_command(int argc, char** argv, ProcessContext& ctx) {
  const std::string program = argv[0];
  CommandLine cli(
      program, "Mine a store with a classifier (ViT, MobileNetV2): keep images whose class probability >= threshold.");
  declare_classifier_flags(cli, "HDF5 store to mine", "all");
  cli.required("class", "the class to mine: a class name of the store or its index")
      .text("threshold", "keep images whose probability of --class is at least this, in (0, 1]", "0.995")
      .required("output", "directory for mined.csv and contact_sheet.png")
      .text("subset-store", "also write the hits as a new HDF5 store (e.g. to fine-tune the VAE on)")
      .text("subset-split", "split of the hits in the subset store: train (all of them, for fine-tuning) | keep",
            "train")
      .toggle("overwrite", "replace an existing --subset-store")
      .text("contact-sheet-max", "at most this many hits (the best) on the contact sheet", "100");
  declare_scoring_flags(cli);
  if (!cli.parse(argc, argv)) return 0;
  // Every check that needs no scoring comes first, on every rank, so a mistake costs no compute.
  const std::string checkpoint = cli.get("checkpoint"), store_path = cli.get("store"), output = cli.get("output");
  const std::string class_flag = cli.get("class");
  const double threshold = cli.number("threshold");
  check_mining_threshold(threshold, "--threshold");
  const std::string split = cli.get("split");
  const std::string subset_path = cli.get("subset-store");
  const std::string subset_split = cli.get("subset-split");
  FT_USER_CHECK(subset_split == "train" || subset_split == "keep",
                "--subset-split must be train or keep, got '" << subset_split << "'");
  const bool overwrite = cli.given("overwrite");
  FT_USER_CHECK(subset_path.empty() || overwrite || !std::filesystem::exists(subset_path),
                "--subset-store " << subset_path << " already exists (pass --overwrite to replace it)");
  const int64_t sheet_max = cli.integer("contact-sheet-max");
  FT_USER_CHECK(sheet_max >= 0, "--contact-sheet-max must be >= 0, got " << sheet_max);
  const int64_t batch = cli.integer("batch");
  const bool average_flips = flip_tta(cli);
  FT_USER_CHECK(batch > 0, "--batch must be > 0, got " << batch);
  apply_thread_flag(ctx, cli.integer("threads"));

  StoreReader store(store_path);
  const int cls = parse_class_flag(store.info(), class_flag);
  const std::vector<int64_t> indices = select_store_indices(store, split, "--split");
  const LoadedModel model =
      load_model_for_eval(checkpoint, cli.get("model-config"), store.info(), ctx.device,
                          parse_model_weights(cli.get("weights"), "--weights"), model_flag_names());
  model.need<ImageClassifier>("a classifier");  // before the agreement: a wrong kind is one line
  const std::string& class_name = store.info().class_names[cls];
  log("eval mine: " + model.source + " on " + std::to_string(indices.size()) + " images (" + split + ") of " +
      store_path + ", class '" + class_name + "', threshold " + cli.get("threshold") + " (" +
      std::to_string(ctx.world_size) + " rank" + (ctx.world_size > 1 ? "s" : "") + ")");

  agree_setup_done(*ctx.comm);  // every rank's flags, files and model are good (else: one line, no abort)

  // (collective) every rank scores its slice; all rows arrive on every rank.
  const ClassifierScores scores = score_with_classifier(model, store_path, indices, batch, ctx, average_flips);
  std::vector<float> class_scores(indices.size());
  for (size_t i = 0; i < indices.size(); ++i) class_scores[i] = scores.probability(i, cls);
  const std::vector<MinedImage> hits = select_hits(indices, class_scores, threshold);

  if (ctx.rank == 0) {  // (rank 0 only) files and messages
    const std::filesystem::path dir(output);
    const std::string csv_path = (dir / "mined.csv").string();
    const std::vector<int32_t> identities = store.info().has_identities ? store.identities() : std::vector<int32_t>{};
    write_text_file(csv_path, mined_csv(hits, store.filenames(), identities));
    log(std::to_string(hits.size()) + " of " + std::to_string(indices.size()) + " images passed (probability of '" +
        class_name + "' >= " + cli.get("threshold") + "): " + csv_path);
    if (hits.empty()) {
      log("eval mine: no image passed the threshold; mined.csv holds only its header" +
          std::string(subset_path.empty() ? "" : ", no subset store written") + " (lower --threshold to mine more)");
    } else {
      const std::string sheet = (dir / "contact_sheet.png").string();
      const int64_t shown = write_contact_sheet(store, hits, sheet_max, 0, sheet);
      if (shown > 0) log("eval mine: contact sheet of the best " + std::to_string(shown) + " hits: " + sheet);
      if (!subset_path.empty()) {
        const int64_t written = write_subset_store(store, hits, subset_path, subset_split == "keep", overwrite);
        log("eval mine: subset store " + subset_path + " holds " + std::to_string(written) + " images");
      }
    }
  }
  ctx.comm->barrier();
  return 0;
}

}  // namespace facetrain
