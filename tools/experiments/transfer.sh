#!/usr/bin/env bash
# The transfer experiment (its results: docs/results.md): pretrain a classifier on Fashion-MNIST classes
# 0-4, export it, then learn classes 5-9 from 1,000 training images four ways (from scratch, head only,
# head + last 2 blocks, everything), each on 2 ranks x 1 thread for the same steps; the validation split
# (carved from the train file) is watched per epoch, the test split read once at the end. Prints a Markdown
# table. MODEL: vit (configs/vit-fashion-mnist.pbtxt, 28 px) or mobilenet_v2
# (configs/mobilenet-v2-fashion-mnist-32.pbtxt, 32 px).
# Usage: tools/experiments/transfer.sh [vit|mobilenet_v2] [OUT_DIR]   (about 5 minutes each on 2 cores)
set -euo pipefail
cd "$(dirname "$0")/../.."
model=${1:-vit}
out=${2:-runs/transfer-$model}
ft=${FT:-build/bin/facetrain}
case $model in
  vit) config=configs/vit-fashion-mnist.pbtxt; size=28 ;;
  mobilenet_v2) config=configs/mobilenet-v2-fashion-mnist-32.pbtxt; size=32 ;;
  *) echo "usage: $0 [vit|mobilenet_v2] [OUT_DIR]"; exit 2 ;;
esac
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
ranks=(mpirun --oversubscribe --bind-to none -np 2)
fmnist=/usr/share/datasets/fashion-mnist
mkdir -p "$out"
$ft ingest --source idx --input $fmnist --size $size --classes 0,1,2,3,4 --output "$out/classes0-4.h5" --overwrite --quiet
$ft ingest --source idx --input $fmnist --size $size --classes 5,6,7,8,9 --train-limit 1000 \
  --output "$out/classes5-9-1k.h5" --overwrite --quiet
seconds() { date +%s.%N; }

# 1. Pretraining on classes 0-4 (27,000 training images, the config's epochs).
rm -rf "$out/pretrain"
"${ranks[@]}" $ft train --config $config --threads 1 --quiet --set data.store="$out/classes0-4.h5" \
  --set logging.run_dir="$out/pretrain" > "$out/pretrain.log" 2>&1
$ft export --checkpoint "$out/pretrain" --output "$out/pretrain.safetensors" > /dev/null

# 2. Classes 5-9 from 1,000 images: 30 epochs of 15 steps (batch 32 per rank), each way.
common=(--config $config --threads 1 --quiet --set data.store="$out/classes5-9-1k.h5"
        --set data.batch_size=32 --set schedule.epochs=30 --set schedule.warmup_steps=20
        --set checkpoint.every_steps=0 --set logging.every_steps=5)
pre=(--set model.$model.pretrained="$out/pretrain.safetensors")
echo "| start | what trains | trained parameters | best val accuracy (epoch) | test accuracy | wall, 2 ranks |"
echo "| --- | --- | --- | --- | --- | --- |"
for way in scratch head head+2 all; do
  case $way in
    scratch) args=(); what="everything" ;;
    head) args=("${pre[@]}" --set trainable.train=head); what="head only" ;;
    head+2) args=("${pre[@]}" --set trainable.train=head --set trainable.last_blocks=2); what="head + last 2 blocks" ;;
    all) args=("${pre[@]}"); what="everything" ;;
  esac
  rm -rf "$out/$way"
  t0=$(seconds)
  "${ranks[@]}" $ft train "${common[@]}" "${args[@]}" --set logging.run_dir="$out/$way" > "$out/$way.log" 2>&1
  wall=$(awk "BEGIN {print $(seconds) - $t0}")
  "${ranks[@]}" $ft eval metrics --checkpoint "$out/$way" --store "$out/classes5-9-1k.h5" --split test \
    --output "$out/$way-test" > "$out/$way-test.log" 2>&1
  test_acc=$(grep -o '"accuracy": [0-9.]*' "$out/$way-test/metrics.json" | head -1 | awk '{printf "%.2f %%", 100 * $2}')
  best=$(grep -E '^epoch [0-9]+ val: ' "$out/$way.log" | sed -E 's/^epoch ([0-9]+) .*accuracy ([0-9.]+).*/\2 \1/' |
         sort -g | tail -1 | awk '{printf "%.2f %% (%d)", 100 * $1, $2}')
  trains=$(grep -o 'summary: [0-9,]* of [0-9,]* parameters train' "$out/$way.log" | sed 's/summary: //; s/ parameters train//' ||
           true)
  [[ -n $trains ]] || trains="all $(sed -nE "s/^$model: ([0-9]+) parameters.*/\1/p" "$out/$way.log" |
                               sed ':a;s/\B[0-9]\{3\}\>/,&/;ta')"
  start=$([[ $way == scratch ]] && echo "random" || echo "classes 0-4 $model")
  echo "| $start | $what | $trains | $best | $test_acc | $(printf '%.0f' "$wall") s |"
done
