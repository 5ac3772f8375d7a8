#!/usr/bin/env bash
# End-to-end: a stop (SIGUSR1 on rank 1) that lands on the LAST step of an epoch still runs that epoch's
# validation before the checkpoint, and the resumed run starts the next epoch: its per-step losses and its
# validation records equal an unstopped run's. A stop on the FINAL step finishes the run (exit 0) as an
# unstopped run does. The signal is sent by the rank itself at an exact step (FACETRAIN_FAULT_SIGNAL_*), so
# the test does not depend on timing.
# Usage: stop_at_epoch_end.sh FACETRAIN_BINARY RANKS
set -euo pipefail
ft=$1
ranks=$2
work=$(mktemp -d); echo "work dir $work"
trap '[[ -n "${KEEP:-}" ]] || rm -rf "$work"' EXIT
mpirun_=(mpirun --allow-run-as-root --oversubscribe --bind-to none -np "$ranks")

"$ft" synth --output "$work/store.h5" --count 400 --size 16 --seed 5 --quiet
source "$(dirname "$0")/../../lib/run_config.sh"
vit_config "$work/run.pbtxt" vit32 "$work/store.h5" 16 val \
  'optimizer { kind: "adamw" lr: 0.003 grad_clip_norm: 1.0 }' \
  'schedule { epochs: 3 warmup_steps: 2 }' \
  "logging { run_dir: \"$work/unused\" every_steps: 1 }"
records() {  # "step name value" for the train/loss and val/* records of a metrics.jsonl
  grep -oE '"step": *[0-9]+|"(train/loss|val/[a-z]+)": *[-0-9.eE+]+' "$1" |
    awk -F': *' '/"step"/ { step = $2; next } { print step, $1, $2 }'
}
train() {  # train RUN_DIR LOG [args...]
  local dir=$1 log=$2; shift 2
  "${mpirun_[@]}" "$ft" train --config "$work/run.pbtxt" --set logging.run_dir="$dir" --threads 1 --quiet "$@" \
    > "$log" 2>&1
}

train "$work/a" "$work/a.log" || { cat "$work/a.log"; echo "FAIL: reference run failed"; exit 1; }
per_epoch=$(sed -nE 's/.* ([0-9]+) steps\/epoch.*/\1/p' "$work/a.log" | head -1)
total=$((3 * per_epoch))
[[ $(records "$work/a/metrics.jsonl" | grep -c 'val/loss') -eq 3 ]] || { echo "FAIL: reference has not 3 validations"; exit 1; }

# 1. Stop on the last step of epoch 0: exit 75, the epoch's validation is already in the records.
set +e
FACETRAIN_FAULT_SIGNAL_RANK=1 FACETRAIN_FAULT_SIGNAL_STEP=$per_epoch train "$work/b" "$work/b1.log"; code=$?
set -e
[[ $code -eq 75 ]] || { cat "$work/b1.log"; echo "FAIL: stop at step $per_epoch exited $code, expected 75"; exit 1; }
records "$work/b/metrics.jsonl" | grep -q "^$per_epoch \"val/loss\"" ||
  { cat "$work/b1.log"; echo "FAIL: the stopped run has no validation of epoch 0"; exit 1; }
train "$work/b" "$work/b2.log" --resume auto || { cat "$work/b2.log"; echo "FAIL: resumed run failed"; exit 1; }
grep -q "resumed from .*at step $per_epoch (epoch 1, batch 0)" "$work/b2.log" ||
  { cat "$work/b2.log"; echo "FAIL: the resumed run does not start epoch 1"; exit 1; }
diff <(records "$work/a/metrics.jsonl") <(records "$work/b/metrics.jsonl") ||
  { echo "FAIL: losses or validations differ from the unstopped run (stop at the end of epoch 0)"; exit 1; }

# 2. Stop on the final step: the run finishes (exit 0) with every record of the unstopped run.
FACETRAIN_FAULT_SIGNAL_RANK=1 FACETRAIN_FAULT_SIGNAL_STEP=$total train "$work/c" "$work/c.log" ||
  { cat "$work/c.log"; echo "FAIL: a stop on the final step did not finish the run"; exit 1; }
grep -q "on the final step" "$work/c.log" || { cat "$work/c.log"; echo "FAIL: no final-step message"; exit 1; }
diff <(records "$work/a/metrics.jsonl") <(records "$work/c/metrics.jsonl") ||
  { echo "FAIL: records differ from the unstopped run (stop on the final step)"; exit 1; }
echo "PASS: $ranks ranks, $per_epoch steps/epoch: a stop at the end of epoch 0 and one on the final step $total" \
     "lose no validation; losses and validations equal the unstopped run's"
