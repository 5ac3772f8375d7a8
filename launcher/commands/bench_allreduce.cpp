// `facetrain bench allreduce`: the command line of bench/allreduce_bench.h.
#include <torch/torch.h>

#include "bench/allreduce_bench.h"
#include "comm/communicator.h"
#include "core/error.h"
#include "core/log.h"
#include "launcher/commands/commands.h"
#include "launcher/commands/flag_groups.h"
#include "launcher/flags.h"
#include "runtime/setup_agreement.h"

namespace facetrain {

int bench_allreduce_command(int argc, char** argv, ProcessContext& ctx) {
  CommandLine cli(argv[0],
                  "algbw and busbw (nccl-tests convention: busbw = algbw * 2(n-1)/n) of the gradient-sync "
                  "path against a plain MPI_Allreduce of the same bytes. Run under mpirun -np N.");
  cli.text("min-bytes", "smallest message", "1024")
      .text("max-bytes", "largest message (always measured)", "100000000")
      .text("factor", "growth factor between sizes", "4")
      .text("reps", "repetitions per size (0: about 1.5 s of work per size, 7..301)", "0")
      .text("param-bytes", "synthetic parameters are float32 tensors of at most this size", "1000000")
      .text("bucket-cap-mb", "gradient bucket cap", "25")
      .text("threads", "LibTorch intra-op threads per rank", "1")
      .text("backend",
            "mpi: the gradient-sync path against MPI_Allreduce (CPU tensors); nccl: the NCCL communicator on each "
            "rank's GPU (a CUDA build, one GPU per rank), nccl-tests' table",
            "mpi")
      .toggle("overlap", "also measure exposed communication of an MLP step with/without hook progress")
      .text("overlap-steps", "steps per --overlap setting", "31");
  if (!cli.parse(argc, argv)) return 0;
  AllreduceBenchOptions o;
  o.min_bytes = cli.integer("min-bytes");
  o.max_bytes = cli.integer("max-bytes");
  o.factor = cli.integer("factor");
  o.reps = static_cast<int>(cli.integer("reps"));
  o.param_bytes = cli.integer("param-bytes");
  o.bucket_cap_mb = cli.number("bucket-cap-mb");
  o.threads = static_cast<int>(cli.integer("threads"));
  o.overlap_steps = cli.given("overlap") ? static_cast<int>(cli.integer("overlap-steps")) : 0;
  o.backend = cli.get("backend");
  FT_USER_CHECK(o.backend == "mpi" || o.backend == "nccl", "--backend must be mpi or nccl (got '" << o.backend << "')");
  if (o.backend == "nccl") {
    FT_USER_CHECK(nccl_available(),
                  "--backend nccl: this build has no NCCL (a CPU LibTorch, or CUDA/NCCL headers not "
                  "found when configuring); build against a CUDA LibTorch 2.x: docs/gpu.md");
    FT_USER_CHECK(ctx.device.is_cuda(), "--backend nccl: rank " << ctx.rank << " on " << ctx.host << " sees no GPU");
    FT_USER_CHECK(!cli.given("overlap"),
                  "--overlap measures the MPI gradient-sync path; leave it out with --backend nccl");
    o.device_index = ctx.device.index();
  }
  FT_USER_CHECK(o.min_bytes >= 4 && o.max_bytes >= o.min_bytes, "--min-bytes/--max-bytes: need 4 <= min <= max");
  FT_USER_CHECK(o.max_bytes / 4 <= (int64_t{1} << 30), "--max-bytes: at most 4 GB");
  FT_USER_CHECK(o.factor >= 2, "--factor must be at least 2");
  FT_USER_CHECK(o.reps >= 0, "--reps must be 0 (automatic) or positive");
  FT_USER_CHECK(o.param_bytes >= 4, "--param-bytes must be at least 4");
  FT_USER_CHECK(o.bucket_cap_mb > 0, "--bucket-cap-mb must be positive");
  FT_USER_CHECK(o.threads >= 1, "--threads must be at least 1");
  FT_USER_CHECK(!cli.given("overlap") || o.overlap_steps >= 1, "--overlap-steps must be at least 1");
  torch::set_num_threads(o.threads);
  agree_setup_done(*ctx.comm);
  run_allreduce_bench(o);
  return 0;
}

}  // namespace facetrain
