#!/usr/bin/env bash
# The step's host reads through the binary (core/host_reads.h): training the CNN (2 micro-batches a step), the
# DCGAN and the VAE on 2 ranks, no step between log steps reads a device value back, and each step that logs or
# checkpoints reads exactly once (the loss, the non-finite flag and the task's scalars together). A loss that
# turns NaN between log steps still stops the run at the next agreement, naming its step, with the last good
# checkpoint kept.
# Usage: host_reads.sh FACETRAIN_BINARY
source "$(dirname "$0")/../../lib/e2e.sh"  # ft, work, run_config
"$ft" synth --output "$work/s32.h5" --count 160 --size 32 --seed 4 --quiet
train() {  # train NAME CONFIG [--set ...]: 2 ranks; exit code in $code, log in $work/NAME.log
  local name=$1 config=$2
  shift 2
  code=0
  mpirun --allow-run-as-root --oversubscribe --bind-to none -np 2 "$ft" train --config "$config" --threads 1 \
    --quiet --set logging.run_dir="$work/$name" "$@" > "$work/$name.log" 2>&1 || code=$?
}
expect_reads() {  # expect_reads NAME LINE: the summary's host-reads line of rank 0
  grep -qF "summary: host reads of device values on rank 0: $2" "$work/$1.log" ||
    { cat "$work/$1.log"; echo "FAIL: $1: expected '$2'"; exit 1; }
  echo "$1: $2"
}

# CNN: 12 steps of 2 micro-batches, logging every 4, a checkpoint every 6: steps 4, 6, 8, 12 agree on the losses.
run_config "$work/cnn.pbtxt" 'cnn { width: 8 }' "$work/s32.h5" 4 val \
  'schedule { max_steps: 12 warmup_steps: 0 accumulation_steps: 2 }' 'checkpoint { every_steps: 6 }' 'logging { every_steps: 4 }'
train cnn "$work/cnn.pbtxt"
[[ $code -eq 0 ]] || { cat "$work/cnn.log"; echo "FAIL: cnn exit $code"; exit 1; }
expect_reads cnn "none in the 8 steps between log steps; 1 in each of the 4 steps that logged, checkpointed or stopped"
[[ $(grep -c '"train/grad_norm"' "$work/cnn/metrics.jsonl") -eq 3 ]] || { echo "FAIL: cnn: grad_norm not logged 3 times"; exit 1; }

for model in dcgan vae; do
  case $model in
    dcgan) block='dcgan { architecture: "seed32" z_size: 16 g_width: 16 d_width: 16 sample_count: 4 }' ;;
    vae) block='vae { latent_size: 8 base_width: 8 sample_count: 4 }' ;;
  esac
  run_config "$work/$model.pbtxt" "$block" "$work/s32.h5" 8 val 'schedule { max_steps: 6 warmup_steps: 0 }' \
    'logging { every_steps: 3 }'
  train "$model" "$work/$model.pbtxt"
  [[ $code -eq 0 ]] || { cat "$work/$model.log"; echo "FAIL: $model exit $code"; exit 1; }
  expect_reads "$model" "none in the 4 steps between log steps; 1 in each of the 2 steps that logged, checkpointed or stopped"
done
grep -q '"train/d_real"' "$work/dcgan/metrics.jsonl" && grep -q '"train/kl"' "$work/vae/metrics.jsonl" ||
  { echo "FAIL: the tasks' scalars are not in metrics.jsonl"; exit 1; }

# A NaN between log steps (the NAN fault seam: rank 1's loss at step 5, weights untouched): logging every 50 and a
# checkpoint every 4, the run stops at step 8, the first agreement after it, names step 5 and keeps the checkpoint
# of step 4, not one of step 8.
FACETRAIN_FAULT_NAN_RANK=1 FACETRAIN_FAULT_NAN_STEP=5 train nan "$work/cnn.pbtxt" --set logging.every_steps=50 \
  --set checkpoint.every_steps=4
[[ $code -ne 0 ]] || { cat "$work/nan.log"; echo "FAIL: a NaN loss did not stop the run"; exit 1; }
grep -q 'loss is not finite at step 5 on 1 rank(s)' "$work/nan.log" || { cat "$work/nan.log"; echo "FAIL: no line naming step 5"; exit 1; }
kept=$(ls "$work/nan/checkpoints" | tr '\n' ' ')
echo "nan: $(grep -o 'loss is not finite at step 5 on 1 rank(s)' "$work/nan.log" | head -1); checkpoints: $kept"
[[ "$kept" == *checkpoint-000000004.ckpt* && "$kept" != *checkpoint-000000008.ckpt* ]] || { echo "FAIL: expected the checkpoint of step 4 and none of step 8"; exit 1; }
echo "PASS"
