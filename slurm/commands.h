// Subcommands implemented by the slurm library (wired into the binary by launcher/commands.cpp).
#pragma once

namespace facetrain {

// facetrain submit --config FILE (--gpus-per-node G | --cpu --tasks-per-node R) [--nodes N]
//   [--cpus-per-task C] [--time T] [--partition P] [--account A] [--array SPEC] [--launcher srun|mpirun]
//   [--set field=value ...] [--output-script FILE] [--submit]
// Renders slurm/train.sbatch for the config and prints it (or writes FILE); --submit pipes it to sbatch and
// prints "Submitted batch job <id>". Plain command: no MPI.
int submit_command(int argc, char** argv);

}  // namespace facetrain
