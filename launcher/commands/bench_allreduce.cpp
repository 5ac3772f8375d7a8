// `facetrain bench allreduce`: the command line of comm/allreduce_bench.h.
#include <torch/torch.h>

#include "comm/allreduce_bench.h"
#include "comm/communicator.h"
#include "core/error.h"
#include "core/log.h"
#include "launcher/commands/commands.h"
#include "launcher/flags.h"

namespace facetrain {

int bench_allreduce_command(int argc, char** argv, ProcessContext& ctx) {
  cxxopts::Options options(argv[0],
                           "algbw and busbw (nccl-tests convention: busbw = algbw * 2(n-1)/n) of the gradient-sync "
                           "path against a plain MPI_Allreduce of the same bytes. Run under mpirun -np N.");
  options.add_options()
      ("min-bytes", "smallest message", cxxopts::value<std::string>()->default_value("1024"))
      ("max-bytes", "largest message (always measured)", cxxopts::value<std::string>()->default_value("100000000"))
      ("factor", "growth factor between sizes", cxxopts::value<std::string>()->default_value("4"))
      ("reps", "repetitions per size (0: about 1.5 s of work per size, 7..301)",
       cxxopts::value<std::string>()->default_value("0"))
      ("param-bytes", "synthetic parameters are float32 tensors of at most this size",
       cxxopts::value<std::string>()->default_value("1000000"))
      ("bucket-cap-mb", "gradient bucket cap", cxxopts::value<std::string>()->default_value("25"))
      ("threads", "LibTorch intra-op threads per rank", cxxopts::value<std::string>()->default_value("1"))
      ("overlap", "also measure exposed communication of an MLP step with/without hook progress")
      ("overlap-steps", "steps per --overlap setting", cxxopts::value<std::string>()->default_value("31"))
      ("h,help", "show this help");
  const cxxopts::ParseResult args = parse_flags(options, argc, argv);
  if (args.count("help")) {
    log(options.help());
    return 0;
  }
  AllreduceBenchOptions o;
  o.min_bytes = int_flag(args, "min-bytes");
  o.max_bytes = int_flag(args, "max-bytes");
  o.factor = int_flag(args, "factor");
  o.reps = static_cast<int>(int_flag(args, "reps"));
  o.param_bytes = int_flag(args, "param-bytes");
  o.bucket_cap_mb = double_flag(args, "bucket-cap-mb");
  o.threads = static_cast<int>(int_flag(args, "threads"));
  o.overlap_steps = args.count("overlap") ? static_cast<int>(int_flag(args, "overlap-steps")) : 0;
  FT_USER_CHECK(o.min_bytes >= 4 && o.max_bytes >= o.min_bytes, "--min-bytes/--max-bytes: need 4 <= min <= max");
  FT_USER_CHECK(o.max_bytes / 4 <= (int64_t{1} << 30), "--max-bytes: at most 4 GB");
  FT_USER_CHECK(o.factor >= 2, "--factor must be at least 2");
  FT_USER_CHECK(o.reps >= 0, "--reps must be 0 (automatic) or positive");
  FT_USER_CHECK(o.param_bytes >= 4, "--param-bytes must be at least 4");
  FT_USER_CHECK(o.bucket_cap_mb > 0, "--bucket-cap-mb must be positive");
  FT_USER_CHECK(o.threads >= 1, "--threads must be at least 1");
  FT_USER_CHECK(!args.count("overlap") || o.overlap_steps >= 1, "--overlap-steps must be at least 1");
  torch::set_num_threads(o.threads);
  agree_setup_done(*ctx.comm);
  run_allreduce_bench(o);
  return 0;
}

}  // namespace facetrain
