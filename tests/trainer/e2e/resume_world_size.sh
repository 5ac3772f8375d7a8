#!/usr/bin/env bash
# End-to-end: a run stopped mid-epoch on 3 ranks resumes on 2, is stopped again and finishes on 4. Each
# resume goes on after the images of the epoch's order already consumed (the checkpoint counts them over
# all ranks), so epoch 0 ends exactly when its images run out at the new size: its validation lands at the
# step the image count predicts, not a per-rank batch count from another world size. (That no image is seen
# twice or skipped across such a chain is checked image by image in datastore_loader.)
# Usage: resume_world_size.sh FACETRAIN_BINARY
set -euo pipefail
ft=$1
work=$(mktemp -d); echo "work dir $work"
trap '[[ -n "${KEEP:-}" ]] || rm -rf "$work"' EXIT
batch=4
"$ft" synth --output "$work/store.h5" --count 300 --size 16 --seed 5 --quiet
n=$("$ft" stats "$work/store.h5" | awk '$1 == "total" { print $2; exit }')  # images in the train split
source "$(dirname "$0")/../../lib/run_config.sh"
vit_config "$work/run.pbtxt" vit32 "$work/store.h5" $batch val \
  'optimizer { kind: "adamw" lr: 0.003 }' \
  'schedule { epochs: 2 warmup_steps: 2 }' \
  "logging { run_dir: \"$work/run\" every_steps: 1 }"
train() {  # train RANKS STOP_AT_STEP LOG [args...]: rank 0 signals itself after that step (0: never)
  local ranks=$1 stop=$2 log=$3; shift 3
  local env=()
  [[ $stop -gt 0 ]] && env=(env FACETRAIN_FAULT_SIGNAL_RANK=0 FACETRAIN_FAULT_SIGNAL_STEP="$stop")
  set +e
  "${env[@]}" mpirun --allow-run-as-root --oversubscribe --bind-to none -np "$ranks" \
    "$ft" train --config "$work/run.pbtxt" --threads 1 --quiet "$@" > "$log" 2>&1
  code=$?
  set -e
}
val_steps() { grep -oE '"step": *[0-9]+, *"val/loss"' "$work/run/metrics.jsonl" | grep -oE '[0-9]+' | tr '\n' ' '; }

train 3 4 "$work/1.log"
[[ $code -eq 75 ]] || { cat "$work/1.log"; echo "FAIL: 3 ranks: exit $code, expected 75"; exit 1; }
train 2 10 "$work/2.log" --resume auto
[[ $code -eq 75 ]] || { cat "$work/2.log"; echo "FAIL: 2 ranks: exit $code, expected 75"; exit 1; }
grep -q "checkpoint written by 3 ranks, now 2: epoch 0 goes on after image 48 of its order" "$work/2.log" ||
  { cat "$work/2.log"; echo "FAIL: no world-size resume line (3 -> 2)"; exit 1; }
train 4 0 "$work/3.log" --resume auto
[[ $code -eq 0 ]] || { cat "$work/3.log"; echo "FAIL: 4 ranks: exit $code, expected 0"; exit 1; }
grep -q "checkpoint written by 2 ranks, now 4: epoch 0 goes on after image 96 of its order" "$work/3.log" ||
  { cat "$work/3.log"; echo "FAIL: no world-size resume line (2 -> 4)"; exit 1; }

# 48 images on 3 ranks (4 steps), 48 more on 2 (6 steps), then what is left of epoch 0 on 4 ranks, then epoch 1.
epoch0_end=$((10 + (n - 96) / (4 * batch)))
run_end=$((epoch0_end + n / (4 * batch)))
want="$epoch0_end $run_end "
[[ "$(val_steps)" == "$want" ]] ||
  { cat "$work/3.log"; echo "FAIL: validations at steps '$(val_steps)', expected '$want' ($n train images)"; exit 1; }
echo "PASS: 3 -> 2 -> 4 ranks: epoch 0 ended at step $epoch0_end after its $n images, the run at step $run_end"
