// Compute threads per rank: LibTorch's intra-op pool and OpenBLAS's own pool, set once by the launcher and
// overridden by a command's --threads flag.
#pragma once

#include <cstdint>

#include "runtime/process_context.h"

namespace facetrain {

// Sets the compute threads of this process: LibTorch's intra-op pool and, when the BLAS behind
// libblas.so.3 is OpenBLAS, its own thread pool too (LibTorch does not manage it, and unbound ranks would
// otherwise each start one OpenBLAS thread per core: oversubscription, and rank-count-dependent sums).
void set_compute_threads(int threads);

// A --threads value: N > 0 sets ctx.threads and the compute threads; 0 keeps the launcher's per-rank choice.
// Then measures ctx.matmul with the final count (runtime/blas_kernels.h measure_matmul_rates), once: every
// command on ranks calls this as it starts, before its setup agreement.
// Throws UserError for a negative value.
void apply_thread_flag(ProcessContext& ctx, int64_t threads);

}  // namespace facetrain
