// Subcommands of the communication unit (wired into the binary by launcher/): `facetrain bench allreduce`.
#pragma once

namespace facetrain {

// facetrain bench allreduce [--min-bytes N] [--max-bytes N] [--factor F] [--reps N] [--param-bytes N]
//   [--bucket-cap-mb MB] [--threads N] [--overlap]
// Runs on MPI ranks (mpirun -np N); initialises MPI itself when the launcher has not. Prints (rank 0) the
// algbw/busbw of the gradient-sync path beside a plain MPI_Allreduce of the same bytes.
int bench_allreduce_command(int argc, char** argv);

}  // namespace facetrain
