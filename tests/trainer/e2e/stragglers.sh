#!/usr/bin/env bash
# End-to-end straggler watch on 2 ranks: with rank 1 slowed by 100 ms of compute in every step (the SLOW fault
# seam), the log names rank 1, its host and "compute" within two log intervals, never rank 0, and `doctor RUN_DIR`
# lists rank 1 as the slowest; with no seam no rank is named.
# Usage: stragglers.sh FACETRAIN_BINARY
source "$(dirname "$0")/../../lib/e2e.sh"  # ft, work, run_config
"$ft" synth --output "$work/s16.h5" --count 600 --size 16 --seed 3 --quiet
# Steps of tens of milliseconds and a threshold of 50 %: two ranks on a 2-core machine share their cores with
# the loader threads and whatever else runs, and a 20 % difference between two ranks' 5-step medians happens
# there without any fault; the slowed rank is several times slower.
vit_config "$work/s.pbtxt" vit32 "$work/s16.h5" 24 val 'schedule { max_steps: 20 }' \
  "logging { run_dir: \"$work/r\" every_steps: 5 straggler_threshold: 0.5 }"
train() {  # train RUN_DIR LOG [env...]
  local dir=$1 log=$2; shift 2
  env "$@" mpirun --allow-run-as-root --oversubscribe --bind-to none -np 2 "$ft" train --config "$work/s.pbtxt" \
    --threads 1 --quiet --set logging.run_dir="$dir" > "$log" 2>&1 || { cat "$log"; echo "FAIL: training"; exit 1; }
}
train "$work/slow" "$work/slow.log" FACETRAIN_FAULT_SLOW_RANK=1 FACETRAIN_FAULT_SLOW_STEP=1
line=$(grep "straggler: rank 1" "$work/slow.log" | head -1)
[[ -n $line ]] || { cat "$work/slow.log"; echo "FAIL: rank 1 slowed, not named"; exit 1; }
[[ $line == *"(host $(hostname)"*"steps 6-10:"*"the extra time is compute"* ]] ||
  { echo "FAIL: the straggler line: $line"; exit 1; }
! grep -q "straggler: rank 0" "$work/slow.log" || { grep straggler "$work/slow.log"; echo "FAIL: rank 0 named"; exit 1; }
echo "ok   named within two intervals: $line"
doctor=$("$ft" doctor "$work/slow")
grep -A1 "^slowest ranks" <<<"$doctor" | grep -q "rank 1 (host" || { echo "$doctor"; echo "FAIL: doctor's slowest rank"; exit 1; }
echo "ok   doctor: $(grep -A1 '^slowest ranks' <<<"$doctor" | tail -1)"
train "$work/even" "$work/even.log"
! grep -q "straggler:" "$work/even.log" || { grep straggler "$work/even.log"; echo "FAIL: a rank named with no seam"; exit 1; }
echo "ok   no seam: no rank named"
echo "PASS"
