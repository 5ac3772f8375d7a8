#!/usr/bin/env bash
# How long a checkpoint stops training, with and without background writes (checkpoint.background_write), on
# the seed-004 VAE with its VGG19 perceptual loss (configs/vae-celeba64.pbtxt's shape: latent 512, base width 64,
# 64x64; untrained VGG features stand in for the weights file, the same cost) on 2 ranks x 1 thread,
# checkpointing every 4 steps. Prints the run summaries' checkpoint lines (medians) and the file size.
# Usage: tools/experiments/checkpoint_stall.sh [OUT_DIR]   (about 4 minutes on 2 cores)
set -euo pipefail
cd "$(dirname "$0")/../.."
out=${1:-runs/checkpoint-stall}
ft=${FT:-build/bin/facetrain}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
mkdir -p "$out"
[[ -f $out/faces64.h5 ]] || $ft synth --output "$out/faces64.h5" --count 600 --size 64 --seed 1 --quiet
for background in false true; do
  rm -rf "$out/$background"
  mpirun --oversubscribe --bind-to none -np 2 $ft train --config configs/vae-celeba64.pbtxt --threads 1 --quiet \
    --set data.store="$out/faces64.h5" --set data.batch_size=8 --set data.loader_threads=1 --set data.val_split= \
    --set model.vae.perceptual.weights= --set model.vae.perceptual.allow_random_features=true \
    --set schedule.max_steps=24 --set checkpoint.every_steps=4 --set checkpoint.keep_last=2 \
    --set checkpoint.background_write=$background --set logging.run_dir="$out/$background" > "$out/$background.log" 2>&1
  size=$(ls -l "$out/$background"/checkpoints/*.ckpt | head -1 | awk '{printf "%.0f MB", $5 / 1e6}')
  echo "background_write $background: $(grep -o 'summary: [0-9]* checkpoints.*' "$out/$background.log"); step: $(grep -o 'compute [0-9.]* ms' "$out/$background.log"); checkpoint file $size"
done
