// `facetrain bench loader FILE`: the command line of bench/loader_bench.h.
#include "bench/loader_bench.h"
#include "core/error.h"
#include "datastore/store.h"
#include "launcher/commands/commands.h"
#include "launcher/flags.h"

namespace facetrain {

int bench_loader_command(int argc, char** argv) {
  CommandLine cli(argv[0],
                  "Images/s per rank of the data path: raw reads, normalized batches, full augmentation, "
                  "beside memcpy. Pin to one core with `taskset -c 0`.");
  LoaderBenchRequest r;
  cli.positional("file", "store to read (HDF5, from facetrain ingest/synth)")
      .bind("split", &r.split, "train | val | test")
      .bind("batch", &r.batch, "batch size per rank")
      .bind("threads", &r.threads, "loader worker threads (plus one I/O thread)")
      .bind("prefetch", &r.prefetch, "loader prefetch depth in batches");
  cli.bind("seconds", &r.seconds, "duration of one repetition")
      .bind("repeats", &r.repeats, "repetitions per row (the table shows their median)")
      .toggle("cold", "skip reading FILE once before timing (then the first rows may measure the disk)")
      .toggle("no-simd", "time the portable scalar augmentation kernel instead of AVX2");
  cli.bind("generate", &r.generate, "first write FILE as N random-noise images (when FILE does not exist)")
      .bind("size", &r.size, "image size for --generate")
      .bind("channels", &r.channels, "channels for --generate (1 or 3)");
  if (!cli.parse(argc, argv)) return 0;
  parse_split(r.split, "--split");
  FT_USER_CHECK(r.batch >= 1, "--batch must be at least 1");
  FT_USER_CHECK(r.threads >= 1, "--threads must be at least 1");
  FT_USER_CHECK(r.seconds > 0, "--seconds must be positive");
  FT_USER_CHECK(r.repeats >= 1, "--repeats must be at least 1");
  FT_USER_CHECK(r.generate <= 0 || (r.size >= 1 && (r.channels == 1 || r.channels == 3)),
                "--size/--channels: bad image shape");
  r.file = cli.get("file");
  r.cold = cli.given("cold");
  r.no_simd = cli.given("no-simd");
  run_loader_bench(r);
  return 0;
}

}  // namespace facetrain
