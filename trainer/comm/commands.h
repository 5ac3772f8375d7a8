// Subcommands of the communication unit (wired into the binary by launcher/): `facetrain bench allreduce`.
#pragma once

namespace facetrain {

class Communicator;

// facetrain bench allreduce [--min-bytes N] [--max-bytes N] [--factor F] [--reps N] [--param-bytes N]
//   [--bucket-cap-mb MB] [--threads N] [--overlap]
// Runs on MPI ranks (mpirun -np N) started by the launcher; `world` takes part in the setup agreement (bad
// flags: one line). Prints (rank 0) the algbw/busbw of the gradient-sync path beside a plain MPI_Allreduce
// of the same bytes.
int bench_allreduce_command(int argc, char** argv, Communicator& world);

}  // namespace facetrain
