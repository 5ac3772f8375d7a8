#!/usr/bin/env bash
# The main job on the embedded default data (Debian's Fashion-MNIST): install what is missing, build, ingest
# into HDF5 stores, print their stats, train the small ViT and the VAE on 2 MPI ranks, evaluate both
# (metrics, mining, attention maps, latent morphs, on 2 ranks) and write the HTML report.
set -euo pipefail
cd "$(dirname "$0")/../.."
bash tools/scripts/install-deps.sh
# The binary only (the tests are built by tools/scripts/test.sh, into the same folder).
bash tools/scripts/build.sh facetrain
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
ft=${FACETRAIN_BUILD_DIR:-build}/bin/facetrain
ranks=(mpirun --oversubscribe -np 2)
mkdir -p data runs
fmnist=/usr/share/datasets/fashion-mnist
[[ -f data/fashion-mnist.h5 ]] || $ft ingest --source idx --input $fmnist --output data/fashion-mnist.h5
[[ -f data/fashion-mnist-32.h5 ]] || $ft ingest --source idx --input $fmnist --size 32 --output data/fashion-mnist-32.h5
$ft stats data/fashion-mnist.h5

# Train (resumes if a previous main job was interrupted; a finished run is not trained again).
"${ranks[@]}" $ft train --config configs/vit-fashion-mnist.pbtxt --resume auto
"${ranks[@]}" $ft train --config configs/vae-fashion-mnist.pbtxt --resume auto

# Evaluate on 2 ranks and gather everything into one offline HTML report.
out=runs/main-job-eval
"${ranks[@]}" $ft eval metrics --checkpoint runs/vit-fashion-mnist --store data/fashion-mnist.h5 --split test \
  --output $out/metrics
"${ranks[@]}" $ft eval mine --checkpoint runs/vit-fashion-mnist --store data/fashion-mnist.h5 --split test \
  --class Bag --threshold 0.995 --output $out/mine
"${ranks[@]}" $ft eval attention --checkpoint runs/vit-fashion-mnist --store data/fashion-mnist.h5 --split test \
  --count 16 --output $out/attention
"${ranks[@]}" $ft eval morph --checkpoint runs/vae-fashion-mnist --store data/fashion-mnist-32.h5 --split test \
  --count 8 --frames 12 --output $out/morph
$ft eval report --run runs/vit-fashion-mnist --eval $out/metrics --eval $out/mine --eval $out/attention \
  --eval $out/morph --output runs/main-job-report.html
echo "main job done: open runs/main-job-report.html"
