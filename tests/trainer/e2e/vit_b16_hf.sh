#!/usr/bin/env bash
# Seed 001's start on 2 ranks: a ViT-B/16 with Hugging Face names (google/vit-base-patch16-224-in21k's layout,
# random weights written here by tests/lib/write_hf_vit.py) fine-tunes for 2 steps at 224 px and at 64 px.
# The loading report is exact (every tensor accounted for: loaded, the new head, the unused pooler), the 14x14
# position grid is resampled to 4x4 at 64 px, and the input normalization follows the file's convention
# (mean = std = 0.5) and is recorded in the run's config.pbtxt unless the config sets its own.
# Usage: vit_b16_hf.sh FACETRAIN_BINARY
set -euo pipefail
ft=$1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mpirun_=(mpirun --allow-run-as-root --oversubscribe --bind-to none -np 2)
/usr/bin/python3 "$(dirname "$0")/../../lib/write_hf_vit.py" "$work/hf.safetensors" > /dev/null
"$ft" synth --output "$work/s224.h5" --count 40 --size 224 --seed 2 --quiet
"$ft" synth --output "$work/s64.h5" --count 40 --size 64 --seed 2 --quiet
cat > "$work/a.pbtxt" <<CFG
model { vit { patch_size: 16 width: 768 depth: 12 heads: 12 mlp_ratio: 4 pretrained: "$work/hf.safetensors" } }
data { store: "$work/s224.h5" batch_size: 2 val_split: "" }
optimizer { kind: "adamw" lr: 0.0001 }
schedule { max_steps: 2 }
logging { run_dir: "$work/a" every_steps: 1 }
CFG
report="vit: model.vit.pretrained $work/hf.safetensors: loaded 150 tensors; head: not in checkpoint: initialised fresh"
report+="; unused from file (2): vit.pooler.dense.bias, vit.pooler.dense.weight"
for size in 224 64; do
  "${mpirun_[@]}" "$ft" train --config "$work/a.pbtxt" --threads 1 --quiet --set data.store="$work/s$size.h5" \
    --set logging.run_dir="$work/r$size" > "$work/$size.log" 2>&1 || { cat "$work/$size.log"; echo "FAIL: $size px"; exit 1; }
  expected=$report
  [[ $size == 64 ]] && expected="${report/initialised fresh/initialised fresh; pos_embed: 14x14 grid resampled (bicubic) to 4x4}"
  grep -qxF "$expected" "$work/$size.log" || { grep "pretrained" "$work/$size.log"; echo "FAIL: $size px: report is not: $expected"; exit 1; }
  [[ $(grep -c '"train/loss"' "$work/r$size/metrics.jsonl") -eq 2 ]] || { echo "FAIL: $size px: not 2 steps"; exit 1; }
  grep -q 'normalization: "minus_one_one"' "$work/r$size/config.pbtxt" ||
    { echo "FAIL: $size px: the run's config.pbtxt does not record minus_one_one"; exit 1; }
  echo "ok   $size px: 2 steps; $(grep -o 'loaded 150 tensors.*' "$work/$size.log" | cut -c1-120)...; normalization minus_one_one recorded"
done
"${mpirun_[@]}" "$ft" train --config "$work/a.pbtxt" --threads 1 --quiet --set data.store="$work/s64.h5" \
  --set logging.run_dir="$work/own" --set data.normalization=store --set schedule.max_steps=1 > "$work/own.log" 2>&1 ||
  { cat "$work/own.log"; echo "FAIL: data.normalization=store"; exit 1; }
grep -q 'normalization: "store"' "$work/own/config.pbtxt" && grep -q "input normalization: store (data.normalization)" "$work/own.log" ||
  { echo "FAIL: the config's own normalization was not kept"; exit 1; }
echo "ok   data.normalization store in the config wins over the file's convention"
