#!/usr/bin/env bash
# End-to-end: an out-of-memory error inside a training step (FACETRAIN_FAULT_OOM_*: the rank asks its device's
# allocator for 1 EiB in that step, and gets LibTorch's own error) is one line naming the step, the rank, the
# per-rank batch, the memory peaks and the smallest change that halves a micro-batch, and exit code 2 through
# the launcher's error path: alone, and on 2 ranks, where the job is aborted so the other rank does not wait.
# The GPU memory seam (FACETRAIN_TEST_GPU_MEMORY) stands for a GPU's allocator figures in the line.
# Usage: out_of_memory.sh FACETRAIN_BINARY
set -euo pipefail
ft=$1
work=$(mktemp -d); echo "work dir $work"
trap '[[ -n "${KEEP:-}" ]] || rm -rf "$work"' EXIT
source "$(dirname "$0")/../../lib/run_config.sh"

"$ft" synth --output "$work/s.h5" --count 160 --size 16 --quiet
vit_config "$work/c.pbtxt" vit16 "$work/s.h5" 8 "" 'schedule { max_steps: 6 accumulation_steps: 1 }' \
  "logging { run_dir: \"$work/run\" every_steps: 2 }"

# One rank, at step 3: "error: step 3: out of memory ...", exit 2, steps 1-2 trained.
set +e
FACETRAIN_FAULT_OOM_RANK=0 FACETRAIN_FAULT_OOM_STEP=3 "$ft" train --config "$work/c.pbtxt" --threads 1 --quiet \
  > "$work/one.log" 2>&1
code=$?
set -e
[[ $code -eq 2 ]] || { cat "$work/one.log"; echo "FAIL: one rank exited $code, expected 2"; exit 1; }
expected='^error: step 3: out of memory on rank 0 \(cpu\) with data\.batch_size 8 x schedule\.accumulation_steps 1 per rank \(host peak [0-9]+ MB\)\. The smallest change that halves a micro-batch: --set data\.batch_size=4 --set schedule\.accumulation_steps=2 \(8 images per rank and step as before\)\. The allocator: .*DefaultCPUAllocator: .*1152921504606846976 bytes'
[[ $(grep -cE "$expected" "$work/one.log") -eq 1 ]] || { cat "$work/one.log"; echo "FAIL: not one line matching $expected"; exit 1; }
[[ $(grep -c 'error' "$work/one.log") -eq 1 ]] || { cat "$work/one.log"; echo "FAIL: more than one error line"; exit 1; }

# Two ranks, rank 1 at step 4, with GPU figures through the seam: the one line from rank 1, exit 2.
set +e
FACETRAIN_TEST_GPU_MEMORY=70000,76800,3,81920 FACETRAIN_FAULT_OOM_RANK=1 FACETRAIN_FAULT_OOM_STEP=4 \
  mpirun --allow-run-as-root --oversubscribe --bind-to none -np 2 "$ft" train --config "$work/c.pbtxt" \
  --set logging.run_dir="$work/run2" --threads 1 --quiet > "$work/two.log" 2>&1
code=$?
set -e
[[ $code -eq 2 ]] || { cat "$work/two.log"; echo "FAIL: two ranks exited $code, expected 2"; exit 1; }
expected='^\[rank 1\] error: step 4: out of memory on rank 1 \(cpu\) with data\.batch_size 8 x schedule\.accumulation_steps 1 per rank \(host peak [0-9]+ MB; GPU peak 68\.36 GB allocated, 75\.00 GB reserved of 80\.00 GB, 3 allocator retries\)\. The smallest change that halves a micro-batch: --set data\.batch_size=4 --set schedule\.accumulation_steps=2'
[[ $(grep -cE "$expected" "$work/two.log") -eq 1 ]] || { cat "$work/two.log"; echo "FAIL: not one line matching $expected"; exit 1; }
grep -q 'rank 0.*out of memory' "$work/two.log" && { cat "$work/two.log"; echo "FAIL: rank 0 reports an out-of-memory error"; exit 1; }
echo "PASS: an out-of-memory error in step 3 (1 rank) and step 4 on rank 1 of 2 is one line with the batch, the peaks and the halved micro-batch, exit 2"
