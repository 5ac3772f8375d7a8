// set_compute_threads and apply_thread_flag (see process_context.h). openblas_set_num_threads is looked up
// at run time so any BLAS can sit behind the libblas.so.3 alternative.
#include <dlfcn.h>

#include <torch/torch.h>

#include "core/error.h"
#include "launcher/threads.h"

namespace facetrain {

void set_compute_threads(int threads) {
  torch::set_num_threads(threads);
  using SetThreads = void (*)(int);
  if (auto set_openblas = reinterpret_cast<SetThreads>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"))) {
    set_openblas(threads);
  }
}

void apply_thread_flag(ProcessContext& ctx, int64_t threads) {
  FT_USER_CHECK(threads >= 0, "--threads must be >= 0 (0: the launcher's per-rank default), got " << threads);
  if (threads > 0) {
    ctx.threads = static_cast<int>(threads);
    set_compute_threads(ctx.threads);
  }
  // The thread count is final: this rank's matmul rates with it, on its own cores, for its start-up line and
  // the hints (a few tens of ms, once).
  if (ctx.matmul.threads != ctx.threads) ctx.matmul = measure_matmul_rates(ctx.threads);
}

}  // namespace facetrain
