// set_compute_threads (see process_context.h). openblas_set_num_threads is looked up at run time so any
// BLAS can sit behind the libblas.so.3 alternative.
#include <dlfcn.h>

#include <torch/torch.h>

#include "trainer/process_context.h"

namespace facetrain {

void set_compute_threads(int threads) {
  torch::set_num_threads(threads);
  using SetThreads = void (*)(int);
  if (auto set_openblas = reinterpret_cast<SetThreads>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"))) {
    set_openblas(threads);
  }
}

}  // namespace facetrain
