#!/usr/bin/env bash
# End-to-end distributed.sync_batchnorm through the binary: the CNN on 2 ranks x 8 images with the field on
# logs the same training loss at every step as 1 rank x 16 images (the loader gives rank r the r-th slice of
# each step's global batch, so the union is the one-rank batch), within 1e-4 relative; with the field off the
# 2-rank run differs (each rank normalises its own 8 images). The run log says which layers sync.
# Usage: sync_batchnorm.sh FACETRAIN_BINARY
source "$(dirname "$0")/../../lib/e2e.sh"  # ft, work, run_config
"$ft" synth --output "$work/s32.h5" --count 240 --size 32 --seed 4 --quiet
# SGD: an update linear in the gradient, so equal gradients keep equal weights step after step.
run_config "$work/c.pbtxt" 'cnn { width: 8 }' "$work/s32.h5" 8 val \
  'optimizer { kind: "sgd" lr: 0.05 weight_decay: 0 }' 'schedule { max_steps: 6 warmup_steps: 0 }' \
  "logging { run_dir: \"$work/r\" every_steps: 1 }"
train() {  # train RANKS BATCH SYNC NAME
  local ranks=$1 batch=$2 sync=$3 name=$4
  mpirun --allow-run-as-root --oversubscribe --bind-to none -np "$ranks" "$ft" train --config "$work/c.pbtxt" \
    --threads 1 --quiet --set logging.run_dir="$work/$name" --set data.batch_size="$batch" \
    --set distributed.sync_batchnorm="$sync" > "$work/$name.log" 2>&1 || { cat "$work/$name.log"; echo "FAIL: $name"; exit 1; }
}
losses() { grep -oE '"train/loss": *[-0-9.e+]+' "$work/$1/metrics.jsonl" | grep -oE '[-0-9.e+]+$'; }
train 1 16 false one
train 2 8 true synced
train 2 8 false per_rank
grep -q "^cnn: 2 BatchNorm layers normalise over the batches of all 2 ranks (distributed.sync_batchnorm)" \
  "$work/synced.log" || { cat "$work/synced.log"; echo "FAIL: no sync line"; exit 1; }
python3 - <(losses one) <(losses synced) <(losses per_rank) <<'PY'
import sys
one, synced, per_rank = ([float(x) for x in open(p)] for p in sys.argv[1:4])
assert len(one) == len(synced) == len(per_rank) == 6, (len(one), len(synced), len(per_rank))
worst = max(abs(a - b) / abs(a) for a, b in zip(one, synced))
apart = max(abs(a - b) / abs(a) for a, b in zip(one, per_rank))
print(f"losses 1 rank x 16: {' '.join(f'{x:.6f}' for x in one)}")
print(f"       2 ranks x 8, synced: worst relative difference {worst:.2e}; not synced: {apart:.2e}")
assert worst <= 1e-4, "synced 2-rank losses differ from the one-rank run"
assert apart > 1e-3, "per-rank BatchNorm matched the one-rank run: the comparison cannot tell"
PY
echo "PASS"
