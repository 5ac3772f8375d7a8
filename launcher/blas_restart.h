// The BLAS kernels that fit this CPU, before anything runs. OpenBLAS chooses its kernels once, when the binary
// loads, and on a CPU it does not know falls back to generic ones: Debian's 0.3.21 runs Prescott's on recent
// Xeons, a third of the speed or less (docs/results.md#blas). Choosing again means starting again, with
// OPENBLAS_CORETYPE set: this file restarts the process once, before MPI_Init.
#pragma once

#include <string>

namespace facetrain {

// First thing in main for a command, before MPI_Init and before any BLAS call. When OpenBLAS (a DYNAMIC_ARCH
// build) runs generic kernels (runtime/blas_kernels.h is_generic_openblas_core) on a CPU with AVX2 or AVX-512
// and no user chose them, replaces this process by execv(/proc/self/exe, argv) with OPENBLAS_CORETYPE naming
// the kernels for the CPU (openblas_core_for). The pid stays, so mpirun's and srun's ranks restart fine before
// they reach MPI_Init. Once: the restarted process carries FACETRAIN_BLAS_RESTARTED_FROM and never restarts.
// A user's own OPENBLAS_CORETYPE always wins. Another BLAS (MKL in the torch wheel): nothing happens.
// Returns, when the process goes on, how its kernels were chosen (BlasKernels::choice, kept for
// blas_kernels_choice()); if execv fails it goes on with the generic kernels and the choice says why.
//
// The restarted process removes OPENBLAS_CORETYPE and the marker from its environment (OpenBLAS has read
// them), so that what it starts, a Slurm job on other CPUs say, chooses for itself.
//
// Test seam: FACETRAIN_TEST_OPENBLAS_FALLBACK=1 says that the environment's OPENBLAS_CORETYPE stands for
// OpenBLAS's own fallback on a CPU it does not know, not for a user's choice. A test sets it with
// OPENBLAS_CORETYPE=Prescott: the first process really runs Prescott's kernels and the restart is real, on
// any CPU with AVX2 (the ones OpenBLAS 0.3.21 knows, this AMD EPYC included, never fall back by themselves).
std::string restart_for_blas_kernels(char** argv);

// What restart_for_blas_kernels returned; empty before it ran.
const std::string& blas_kernels_choice();

}  // namespace facetrain
