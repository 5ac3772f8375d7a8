// `facetrain ingest`: flag parsing around run_ingest (ingest.h), with SIGINT/SIGTERM removing the partial
// output, progress lines while it runs and the summary table at the end. The flags are checked here, before
// any file is read; run_ingest names the flags below in what only the source can judge.
#include <filesystem>

#include "core/error.h"
#include "core/log.h"
#include "launcher/commands/commands.h"
#include "launcher/commands/flag_groups.h"
#include "launcher/flags.h"
#include "tools/image_prep.h"
#include "tools/ingest.h"
#include "core/stop_signal.h"

namespace facetrain {

int ingest_command(int argc, char** argv) {
  CommandLine cli(argv[0], "Decode and preprocess raw images into one HDF5 store (datastore/README.md).");
  cli.required("source",
               "folders (DIR/<class>/*.jpg or DIR/{train,val,test}/<class>/), celeba (CelebA layout) or "
               "idx (MNIST/Fashion-MNIST IDX files)")
      .required("input", "source folder")
      .text("size", "square target size (default 64; idx: native 28)")
      .text("height", "target height (overrides --size)")
      .text("width", "target width (overrides --size)")
      .text("channels", "3 = RGB, 1 = grayscale (default 3; idx: 1)")
      .toggle("face-crop", "crop around the largest frontal face (Haar cascade; center crop when none is found)")
      .text("face-cascade", "cascade XML for --face-crop (default: opencv-data's haarcascade_frontalface_default.xml)")
      .text("label-attribute", "celeba: the attribute used as the label", "Smiling")
      .text("idx-classes", "idx: class names: auto (fashion when the folder name says so), fashion or digits", "auto")
      .text("limit", "ingest only N images, evenly spaced over the source (quick trials)", "0")
      .text("classes", "keep only these classes, in this order (names or indices, comma-separated): 0,1,2 or Bag,Coat")
      .text("train-limit", "keep only N train images (evenly spaced), val and test whole: few-label experiments", "0");
  declare_store_writer_flags(cli, "", "decode threads (0 = all cores)");
  if (!cli.parse(argc, argv)) return 0;

  IngestOptions o;
  o.source = cli.get("source");
  o.input = cli.get("input");
  o.output = cli.get("output");
  const bool idx = o.source == "idx";
  FT_USER_CHECK(o.source == "folders" || o.source == "celeba" || idx,
                "--source '" << o.source << "' is not folders, celeba or idx");
  FT_USER_CHECK(cli.given("overwrite") || !std::filesystem::exists(o.output),
                "--output " << o.output << " already exists (pass --overwrite to replace it)");
  if (cli.given("size")) o.height = o.width = static_cast<int>(cli.integer("size"));
  if (cli.given("height")) o.height = static_cast<int>(cli.integer("height"));
  if (cli.given("width")) o.width = static_cast<int>(cli.integer("width"));
  FT_USER_CHECK(!cli.given("size") || o.height > 0, "--size " << o.height << " must be positive");
  FT_USER_CHECK(!cli.given("height") || o.height > 0, "--height " << o.height << " must be positive");
  FT_USER_CHECK(!cli.given("width") || o.width > 0, "--width " << o.width << " must be positive");
  FT_USER_CHECK((o.height > 0) == (o.width > 0), "--height and --width go together (or use --size)");
  FT_USER_CHECK(o.height <= 8192,
                "--" << (cli.given("height") ? "height " : "size ") << o.height << " is not in [1, 8192]");
  FT_USER_CHECK(o.width <= 8192,
                "--" << (cli.given("width") ? "width " : "size ") << o.width << " is not in [1, 8192]");
  if (cli.given("channels")) {
    o.channels = static_cast<int>(cli.integer("channels"));
    FT_USER_CHECK(o.channels == 1 || o.channels == 3, "--channels " << o.channels << " is not 1 or 3");
  }
  o.face_crop = cli.given("face-crop");
  FT_USER_CHECK(!o.face_crop || !idx, "--face-crop does not apply to --source idx");
  if (cli.given("face-cascade")) o.face_cascade = cli.get("face-cascade");
  o.label_attribute = cli.get("label-attribute");
  o.idx_classes = cli.get("idx-classes");
  FT_USER_CHECK(!idx || o.idx_classes == "auto" || o.idx_classes == "fashion" || o.idx_classes == "digits",
                "--idx-classes '" << o.idx_classes << "' is not auto, fashion or digits");
  FT_USER_CHECK(!idx || !cli.given("test-fraction"),
                "--test-fraction does not apply to --source idx (the t10k files are the test split)");
  if (cli.given("val-fraction")) o.val_fraction = cli.number("val-fraction");
  if (cli.given("test-fraction")) o.test_fraction = cli.number("test-fraction");
  FT_USER_CHECK(!cli.given("val-fraction") || o.val_fraction >= 0,
                "--val-fraction " << o.val_fraction << " is negative");
  FT_USER_CHECK(!cli.given("test-fraction") || o.test_fraction >= 0,
                "--test-fraction " << o.test_fraction << " is negative");
  FT_USER_CHECK(o.val_fraction < 1, "--val-fraction " << o.val_fraction << " is not in [0, 1)");
  FT_USER_CHECK(o.test_fraction < 1, "--test-fraction " << o.test_fraction << " is not in [0, 1)");
  const int64_t seed = cli.integer("seed");
  FT_USER_CHECK(seed >= 0, "--seed " << seed << " is negative");
  o.seed = static_cast<uint64_t>(seed);
  o.threads = static_cast<int>(cli.integer("threads"));
  FT_USER_CHECK(o.threads >= 0, "--threads " << o.threads << " is negative");
  o.limit = cli.integer("limit");
  FT_USER_CHECK(o.limit >= 0, "--limit " << o.limit << " is negative");
  o.classes = cli.get("classes");
  o.train_limit = cli.integer("train-limit");
  FT_USER_CHECK(o.train_limit >= 0, "--train-limit " << o.train_limit << " is negative");
  o.overwrite = cli.given("overwrite");
  o.quiet = cli.given("quiet");
  if (o.face_crop && o.face_cascade.empty()) {
    o.face_cascade = default_face_cascade_path();
    FT_USER_CHECK(!o.face_cascade.empty(),
                  "--face-crop: haarcascade_frontalface_default.xml not found under "
                  "/usr/share/opencv4/haarcascades (install opencv-data or pass "
                  "--face-cascade FILE)");
  }
  // What only the source can judge (a missing folder, an unknown class) names these flags.
  o.names.input = "--input";
  o.names.label_attribute = "--label-attribute";
  o.names.classes = "--classes";
  o.names.val_fraction = "--val-fraction";
  o.names.test_fraction = "--test-fraction";

  StopOnSignal stop;
  o.stop = stop.flag();
  const IngestSummary summary = run_ingest(o);
  if (!o.quiet) log(format_ingest_summary(summary));
  return 0;
}

}  // namespace facetrain
