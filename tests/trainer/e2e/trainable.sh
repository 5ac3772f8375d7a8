#!/usr/bin/env bash
# End-to-end fine-tuning on 2 ranks (the `trainable` section), from a facetrain export as the pretrained file:
#  - head only: after an epoch every other tensor equals the file's bit for bit, and the gradient sync
#    carries the head's bytes alone;
#  - head, then the last block from epoch 1: the log says when, the bytes per step grow to match, and exactly
#    the head, the last block and the final norm moved;
#  - that run stopped in epoch 0 (before the unfreeze) and in epoch 1 (after it), resumed twice, ends with the
#    unstopped run's losses and every tensor bit for bit;
#  - a section naming nothing, or on a DCGAN: one line, exit 2, no run directory.
# Usage: trainable.sh FACETRAIN_BINARY
source "$(dirname "$0")/../../lib/bad_input.sh" "$1" 1
set -e
diff_tool="/usr/bin/python3 $(dirname "$0")/../../lib/safetensors_diff.py"
mpirun_=(mpirun --allow-run-as-root --oversubscribe --bind-to none -np 2)
"$ft" synth --output "$work/s16.h5" --count 400 --size 16 --seed 3 --quiet
source "$(dirname "$0")/../../lib/run_config.sh"
vit_config "$work/a.pbtxt" vit32 "$work/s16.h5" 16 val \
  'optimizer { kind: "adamw" lr: 0.003 weight_decay: 0.1 }' \
  'schedule { max_steps: 20 warmup_steps: 2 }' \
  "logging { run_dir: \"$work/a\" every_steps: 1 }"
train() {  # train RUN_DIR LOG [--set ...]: 2 ranks from a.pbtxt
  local dir=$1 out=$2; shift 2
  "${mpirun_[@]}" "$ft" train --config "$work/a.pbtxt" --threads 1 --quiet --set logging.run_dir="$dir" "$@" > "$out" 2>&1
}
train "$work/a" "$work/a.log" || { cat "$work/a.log"; echo "FAIL: pretraining run"; exit 1; }
"$ft" export --checkpoint "$work/a" --output "$work/a.safetensors" > /dev/null
fine=(--set model.vit.pretrained="$work/a.safetensors" --set schedule.max_steps=0 --set schedule.warmup_steps=0)
moved() { $diff_tool "$work/a.safetensors" "$1" | awk '$1 != "same" {print $2}' | tr '\n' ' '; }
bytes_of() { $diff_tool "$work/a.safetensors" "$work/a.safetensors" | grep -E " ($1)" | awk '{n += $3} END {print 4 * n}'; }

# 1. Head only, one epoch.
cat > "$work/head.pbtxt" <<CFG
$(cat "$work/a.pbtxt")
trainable { train: "head" }
CFG
"${mpirun_[@]}" "$ft" train --config "$work/head.pbtxt" --threads 1 --quiet --set logging.run_dir="$work/h" "${fine[@]}" \
  --set schedule.epochs=1 > "$work/h.log" 2>&1 || { cat "$work/h.log"; echo "FAIL: head-only run"; exit 1; }
"$ft" export --checkpoint "$work/h" --output "$work/h.safetensors" > /dev/null
[[ $(moved "$work/h.safetensors") == "head.bias head.weight " ]] ||
  { echo "FAIL: head only: moved: $(moved "$work/h.safetensors")"; exit 1; }
head_bytes=$(bytes_of 'head\.')
all_bytes=$(bytes_of '.')
grep -Eq "gradient sync: [0-9]+ buckets?, $head_bytes bytes per step" "$work/h.log" ||
  { grep "sync:" "$work/h.log"; echo "FAIL: head only: not $head_bytes gradient bytes per step"; exit 1; }
grep -q "summary: 66 of [0-9,]* parameters train" "$work/h.log" || { echo "FAIL: no trainable summary"; exit 1; }
echo "ok   head only: every other tensor bit for bit the file's; $head_bytes of $all_bytes gradient bytes per step"

# 2. Head, then the last block and the final norm from epoch 1; 3 epochs.
cat > "$work/u.pbtxt" <<CFG
$(cat "$work/a.pbtxt")
trainable { train: "head" unfreeze { epoch: 1 last_blocks: 1 } layer_decay: 0.75 }
CFG
run_u() {  # run_u RUN_DIR LOG [args]
  local dir=$1 out=$2; shift 2
  "${mpirun_[@]}" "$ft" train --config "$work/u.pbtxt" --threads 1 --quiet --set logging.run_dir="$dir" "${fine[@]}" \
    --set schedule.epochs=3 "$@" > "$out" 2>&1
}
run_u "$work/u" "$work/u.log" || { cat "$work/u.log"; echo "FAIL: unfreeze run"; exit 1; }
"$ft" export --checkpoint "$work/u" --output "$work/u.safetensors" > /dev/null
expected_moved=$($diff_tool "$work/a.safetensors" "$work/a.safetensors" | awk '{print $2}' | grep -E '^(head|norm|blocks\.1)\.' | tr '\n' ' ')
[[ $(moved "$work/u.safetensors") == "$expected_moved" ]] ||
  { echo "FAIL: unfreeze: moved: $(moved "$work/u.safetensors"), expected $expected_moved"; exit 1; }
block_bytes=$(bytes_of 'head\.|norm\.|blocks\.1\.')
grep -Eq "vit: epoch 1: .* parameters train .*block 2.*; gradient sync: [0-9]+ buckets?, $block_bytes bytes per step" "$work/u.log" ||
  { grep "vit:" "$work/u.log"; echo "FAIL: no unfreeze at epoch 1 with $block_bytes bytes per step"; exit 1; }
echo "ok   unfreeze at epoch 1: $(grep -o 'epoch 1: [0-9,]* of [0-9,]* parameters train' "$work/u.log"), $block_bytes bytes per step"

# 3. Stopped before the unfreeze (step 5) and after it (step 15), resumed each time: identical to run 2.
set +e
FACETRAIN_FAULT_SIGNAL_RANK=1 FACETRAIN_FAULT_SIGNAL_STEP=5 run_u "$work/s" "$work/s1.log"; c1=$?
FACETRAIN_FAULT_SIGNAL_RANK=1 FACETRAIN_FAULT_SIGNAL_STEP=15 run_u "$work/s" "$work/s2.log" --resume auto; c2=$?
run_u "$work/s" "$work/s3.log" --resume auto; c3=$?
set -e
[[ "$c1 $c2 $c3" == "75 75 0" ]] || { cat "$work/s1.log" "$work/s2.log" "$work/s3.log"; echo "FAIL: exits $c1 $c2 $c3"; exit 1; }
losses() { grep '"train/loss"' "$1" | sed -E 's/.*"step": *([0-9]+).*"train\/loss": *([-0-9.eE+]+).*/\1 \2/'; }
diff <(losses "$work/u/metrics.jsonl") <(losses "$work/s/metrics.jsonl") > /dev/null ||
  { echo "FAIL: the losses of the stopped+resumed run differ"; exit 1; }
"$ft" export --checkpoint "$work/s" --output "$work/s.safetensors" > /dev/null
[[ -z $($diff_tool "$work/u.safetensors" "$work/s.safetensors" | grep -v '^same') ]] ||
  { $diff_tool "$work/u.safetensors" "$work/s.safetensors" | grep -v '^same'; echo "FAIL: resumed tensors differ"; exit 1; }
echo "ok   stopped at steps 5 and 15 (either side of the unfreeze), resumed: losses and every tensor identical"

# 4. Bad sections.
set +e
cat > "$work/nothing.pbtxt" <<CFG
$(cat "$work/a.pbtxt")
trainable { train: "none" parameters: "^decoder\\\\." }
CFG
expect trainable-names-nothing 'trainable.parameters: "\^decoder\\\.".* matches no parameter' -- \
  "$ft" train --config "$work/nothing.pbtxt" --set logging.run_dir="$work/r"
cat > "$work/dcgan.pbtxt" <<CFG
model { dcgan { z_size: 16 g_width: 16 d_width: 16 } }
data { store: "$work/s16.h5" batch_size: 16 }
trainable { train: "head" }
logging { run_dir: "$work/r" }
CFG
expect trainable-dcgan "trainable: the DCGAN trains both networks whole" -- "$ft" train --config "$work/dcgan.pbtxt"
exit $fail
