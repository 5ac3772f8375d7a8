// `facetrain ingest`: flag parsing around run_ingest (ingest.h), with SIGINT/SIGTERM removing the partial
// output, progress lines while it runs and the summary table at the end.

#include "core/error.h"
#include "core/log.h"
#include "launcher/commands/commands.h"
#include "launcher/commands/flag_groups.h"
#include "launcher/flags.h"
#include "tools/ingest.h"
#include "core/stop_signal.h"

namespace facetrain {

int ingest_command(int argc, char** argv) {
  CommandLine cli(argv[0], "Decode and preprocess raw images into one HDF5 store (datastore/README.md).");
  cli.required("source", "folders (DIR/<class>/*.jpg or DIR/{train,val,test}/<class>/), celeba (CelebA layout) or "
                         "idx (MNIST/Fashion-MNIST IDX files)")
      .required("input", "source folder")
      .text("size", "square target size (default 64; idx: native 28)")
      .text("height", "target height (overrides --size)").text("width", "target width (overrides --size)")
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
  if (cli.given("size")) o.height = o.width = static_cast<int>(cli.integer("size"));
  if (cli.given("height")) o.height = static_cast<int>(cli.integer("height"));
  if (cli.given("width")) o.width = static_cast<int>(cli.integer("width"));
  FT_USER_CHECK(!cli.given("size") || o.height > 0, "--size " << o.height << " must be positive");
  FT_USER_CHECK(!cli.given("height") || o.height > 0, "--height " << o.height << " must be positive");
  FT_USER_CHECK(!cli.given("width") || o.width > 0, "--width " << o.width << " must be positive");
  FT_USER_CHECK((o.height > 0) == (o.width > 0), "--height and --width go together (or use --size)");
  if (cli.given("channels")) {
    o.channels = static_cast<int>(cli.integer("channels"));
    FT_USER_CHECK(o.channels == 1 || o.channels == 3, "--channels " << o.channels << " is not 1 or 3");
  }
  o.face_crop = cli.given("face-crop");
  if (cli.given("face-cascade")) o.face_cascade = cli.get("face-cascade");
  o.label_attribute = cli.get("label-attribute");
  o.idx_classes = cli.get("idx-classes");
  if (cli.given("val-fraction")) o.val_fraction = cli.number("val-fraction");
  if (cli.given("test-fraction")) o.test_fraction = cli.number("test-fraction");
  FT_USER_CHECK(!cli.given("val-fraction") || o.val_fraction >= 0, "--val-fraction " << o.val_fraction << " is negative");
  FT_USER_CHECK(!cli.given("test-fraction") || o.test_fraction >= 0, "--test-fraction " << o.test_fraction << " is negative");
  const int64_t seed = cli.integer("seed");
  FT_USER_CHECK(seed >= 0, "--seed " << seed << " is negative");
  o.seed = static_cast<uint64_t>(seed);
  o.threads = static_cast<int>(cli.integer("threads"));
  o.limit = cli.integer("limit");
  o.classes = cli.get("classes");
  o.train_limit = cli.integer("train-limit");
  o.overwrite = cli.given("overwrite");
  o.quiet = cli.given("quiet");

  StopOnSignal stop;
  o.stop = stop.flag();
  const IngestSummary summary = run_ingest(o);
  if (!o.quiet) log(format_ingest_summary(summary));
  return 0;
}

}  // namespace facetrain
