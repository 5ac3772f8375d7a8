#!/usr/bin/env bash
# EMA versus raw weights on the main-job ViT recipe (configs/vit-fashion-mnist.pbtxt, 3 epochs on 2 ranks x 1
# thread) with `ema { decay: 0.998 warmup_power: 0.75 }`: validation accuracy of both each epoch (the run's
# log), then test accuracy of both once at the end. Prints a Markdown table.
# Usage: tools/experiments/ema.sh [OUT_DIR]   (build/bin/facetrain built; about 3 minutes on 2 cores)
set -euo pipefail
cd "$(dirname "$0")/../.."
out=${1:-runs/ema}
ft=build/bin/facetrain
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
ranks=(mpirun --oversubscribe --bind-to none -np 2)
mkdir -p "$out"
$ft ingest --source idx --input /usr/share/datasets/fashion-mnist --output "$out/fashion-mnist.h5" --overwrite --quiet
rm -rf "$out/run"
"${ranks[@]}" $ft train --config configs/vit-fashion-mnist.pbtxt --threads 1 --quiet --set data.store="$out/fashion-mnist.h5" \
  --set ema.decay=0.998 --set ema.warmup_power=0.75 --set logging.run_dir="$out/run" > "$out/run.log" 2>&1
echo "| weights | val accuracy, epoch 0 / 1 / 2 | test accuracy (final weights) |"
echo "| --- | --- | --- |"
for w in raw ema; do
  tag=$([[ $w == raw ]] && echo "val:" || echo "val ema:")
  vals=$(grep -E "^epoch [0-9]+ $tag" "$out/run.log" | grep -o 'accuracy [0-9.]*' | awk '{printf "%s%.2f %%", sep, 100 * $2; sep=" / "}')
  "${ranks[@]}" $ft eval metrics --checkpoint "$out/run" --weights $w --store "$out/fashion-mnist.h5" --split test \
    --output "$out/test-$w" > "$out/test-$w.log" 2>&1
  test_acc=$(grep -o '"accuracy": [0-9.]*' "$out/test-$w/metrics.json" | head -1 | awk '{printf "%.2f %%", 100 * $2}')
  echo "| $w | $vals | $test_acc |"
done
