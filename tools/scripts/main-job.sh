#!/usr/bin/env bash
# The main job on the embedded default data (Debian's Fashion-MNIST): install what is missing, build,
# ingest into an HDF5 store, print its stats, train the small ViT on 2 MPI ranks, and evaluate it.
set -euo pipefail
cd "$(dirname "$0")/../.."
bash tools/scripts/install-deps.sh
bash tools/scripts/build.sh
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
ft=build/bin/facetrain
mkdir -p data runs
if [[ ! -f data/fashion-mnist.h5 ]]; then
  $ft ingest --source idx --input /usr/share/datasets/fashion-mnist --output data/fashion-mnist.h5
fi
$ft stats data/fashion-mnist.h5
mpirun --oversubscribe -np 2 $ft train --config configs/vit-fashion-mnist.pbtxt --resume auto
