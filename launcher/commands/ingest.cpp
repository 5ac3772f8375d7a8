// `facetrain ingest`: flag parsing around run_ingest (ingest.h), with SIGINT/SIGTERM removing the partial
// output, progress lines while it runs and the summary table at the end.
#include <cxxopts.hpp>

#include "core/error.h"
#include "core/log.h"
#include "launcher/commands/commands.h"
#include "launcher/flags.h"
#include "tools/ingest.h"
#include "core/stop_signal.h"

namespace facetrain {

int ingest_command(int argc, char** argv) {
  cxxopts::Options options(argv[0], "Decode and preprocess raw images into one HDF5 store (datastore/README.md).");
  options.add_options()
      ("source", "folders (DIR/<class>/*.jpg or DIR/{train,val,test}/<class>/), celeba (CelebA layout) or idx "
                 "(MNIST/Fashion-MNIST IDX files)", cxxopts::value<std::string>())
      ("input", "source folder", cxxopts::value<std::string>())
      ("output", "HDF5 store to write (written as FILE.partial, renamed when complete)", cxxopts::value<std::string>())
      ("size", "square target size (default 64; idx: native 28)", cxxopts::value<std::string>())
      ("height", "target height (overrides --size)", cxxopts::value<std::string>())
      ("width", "target width (overrides --size)", cxxopts::value<std::string>())
      ("channels", "3 = RGB, 1 = grayscale (default 3; idx: 1)", cxxopts::value<std::string>())
      ("face-crop", "crop around the largest frontal face (Haar cascade; center crop when none is found)")
      ("face-cascade", "cascade XML for --face-crop (default: opencv-data's haarcascade_frontalface_default.xml)",
       cxxopts::value<std::string>())
      ("label-attribute", "celeba: the attribute used as the label", cxxopts::value<std::string>()->default_value("Smiling"))
      ("idx-classes", "idx: class names: auto (fashion when the folder name says so), fashion or digits",
       cxxopts::value<std::string>()->default_value("auto"))
      ("val-fraction", "validation fraction for sources without their own partition (default 0.1; idx: 0, "
                       "carved from the train file)", cxxopts::value<std::string>())
      ("test-fraction", "test fraction for sources without their own partition (default 0.1)",
       cxxopts::value<std::string>())
      ("seed", "seed of the split fractions", cxxopts::value<std::string>()->default_value("0"))
      ("threads", "decode threads (0 = all cores)", cxxopts::value<std::string>()->default_value("0"))
      ("limit", "ingest only N images, evenly spaced over the source (quick trials)",
       cxxopts::value<std::string>()->default_value("0"))
      ("overwrite", "replace an existing output")
      ("quiet", "no progress lines or summary")
      ("h,help", "show this help");
  const cxxopts::ParseResult args = parse_flags(options, argc, argv);
  if (args.count("help")) {
    log(options.help());
    return 0;
  }
  FT_USER_CHECK(args.count("source"), argv[0] << ": --source folders|celeba|idx is required");
  FT_USER_CHECK(args.count("input"), argv[0] << ": --input DIR is required");
  FT_USER_CHECK(args.count("output"), argv[0] << ": --output FILE.h5 is required");

  IngestOptions o;
  o.source = args["source"].as<std::string>();
  o.input = args["input"].as<std::string>();
  o.output = args["output"].as<std::string>();
  if (args.count("size")) o.height = o.width = static_cast<int>(int_flag(args, "size"));
  if (args.count("height")) o.height = static_cast<int>(int_flag(args, "height"));
  if (args.count("width")) o.width = static_cast<int>(int_flag(args, "width"));
  FT_USER_CHECK(!args.count("size") || o.height > 0, "--size " << o.height << " must be positive");
  FT_USER_CHECK(!args.count("height") || o.height > 0, "--height " << o.height << " must be positive");
  FT_USER_CHECK(!args.count("width") || o.width > 0, "--width " << o.width << " must be positive");
  FT_USER_CHECK((o.height > 0) == (o.width > 0), "--height and --width go together (or use --size)");
  if (args.count("channels")) {
    o.channels = static_cast<int>(int_flag(args, "channels"));
    FT_USER_CHECK(o.channels == 1 || o.channels == 3, "--channels " << o.channels << " is not 1 or 3");
  }
  o.face_crop = args.count("face-crop") > 0;
  if (args.count("face-cascade")) o.face_cascade = args["face-cascade"].as<std::string>();
  o.label_attribute = args["label-attribute"].as<std::string>();
  o.idx_classes = args["idx-classes"].as<std::string>();
  if (args.count("val-fraction")) o.val_fraction = double_flag(args, "val-fraction");
  if (args.count("test-fraction")) o.test_fraction = double_flag(args, "test-fraction");
  FT_USER_CHECK(!args.count("val-fraction") || o.val_fraction >= 0, "--val-fraction " << o.val_fraction << " is negative");
  FT_USER_CHECK(!args.count("test-fraction") || o.test_fraction >= 0, "--test-fraction " << o.test_fraction << " is negative");
  const int64_t seed = int_flag(args, "seed");
  FT_USER_CHECK(seed >= 0, "--seed " << seed << " is negative");
  o.seed = static_cast<uint64_t>(seed);
  o.threads = static_cast<int>(int_flag(args, "threads"));
  o.limit = int_flag(args, "limit");
  o.overwrite = args.count("overwrite") > 0;
  o.quiet = args.count("quiet") > 0;

  StopOnSignal stop;
  o.stop = stop.flag();
  const IngestSummary summary = run_ingest(o);
  if (!o.quiet) log(format_ingest_summary(summary));
  return 0;
}

}  // namespace facetrain
