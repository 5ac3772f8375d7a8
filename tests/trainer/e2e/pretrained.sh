#!/usr/bin/env bash
# End-to-end: `model.vit.pretrained` starts training from a safetensors file (here a facetrain export) on 2
# ranks. The log's one report accounts for every tensor; at the same image size the run starts from exactly
# the file's weights (an SGD step of lr 1e-30 cannot move a float32 weight, so the next export equals the
# file byte for byte); at twice the image size the position embeddings are resampled to the new patch grid.
# A file that is missing, not safetensors, or of another model is one line and exit 2, with no run directory.
# Usage: pretrained.sh FACETRAIN_BINARY
source "$(dirname "$0")/../../lib/bad_input.sh" "$1" 2
set -e
mpirun_=(mpirun --allow-run-as-root --oversubscribe --bind-to none -np 2)
"$ft" synth --output "$work/s16.h5" --count 400 --size 16 --seed 3 --quiet
"$ft" synth --output "$work/s32.h5" --count 400 --size 32 --seed 4 --quiet
source "$(dirname "$0")/../../lib/run_config.sh"
vit_config "$work/a.pbtxt" vit32 "$work/s16.h5" 16 val \
  'optimizer { kind: "adamw" lr: 0.003 }' \
  'schedule { max_steps: 20 warmup_steps: 2 }' \
  "logging { run_dir: \"$work/a\" every_steps: 1 }"
"${mpirun_[@]}" "$ft" train --config "$work/a.pbtxt" --threads 1 --quiet > "$work/a.log" 2>&1 ||
  { cat "$work/a.log"; echo "FAIL: pretraining run"; exit 1; }
"$ft" export --checkpoint "$work/a" --output "$work/a.safetensors" > /dev/null
tensors=$(od -An -t u8 -N8 "$work/a.safetensors" | tr -d ' ')  # header bytes, to count its tensors
count=$(head -c $((8 + tensors)) "$work/a.safetensors" | tail -c "$tensors" | grep -o '"dtype"' | wc -l)
tensor_bytes() { tail -c +$((9 + $(od -An -t u8 -N8 "$1" | tr -d ' '))) "$1"; }
fine=(--set model.vit.pretrained="$work/a.safetensors" --set schedule.max_steps=1 --set schedule.warmup_steps=0)

# Same size: every tensor loaded, nothing fresh or unused; the weights are the file's.
"${mpirun_[@]}" "$ft" train --config "$work/a.pbtxt" --threads 1 --quiet "${fine[@]}" --set logging.run_dir="$work/b" \
  --set optimizer.kind=sgd --set optimizer.lr=1e-30 --set optimizer.momentum=0 --set optimizer.weight_decay=0 \
  > "$work/b.log" 2>&1 || { cat "$work/b.log"; echo "FAIL: fine-tuning run at 16 px"; exit 1; }
grep -qx "vit: model.vit.pretrained $work/a.safetensors: loaded $count tensors" "$work/b.log" ||
  { grep pretrained "$work/b.log"; echo "FAIL: the report does not say 'loaded $count tensors' and nothing else"; exit 1; }
"$ft" export --checkpoint "$work/b" --output "$work/b.safetensors" > /dev/null
cmp -s <(tensor_bytes "$work/a.safetensors") <(tensor_bytes "$work/b.safetensors") ||
  { echo "FAIL: the run did not start from the file's weights"; exit 1; }
echo "ok   same size: loaded $count tensors, training started from the file's weights bit for bit"

# Twice the size: the 4x4 patch grid's position embeddings resampled to 8x8.
"${mpirun_[@]}" "$ft" train --config "$work/a.pbtxt" --threads 1 --quiet "${fine[@]}" --set logging.run_dir="$work/c" \
  --set data.store="$work/s32.h5" > "$work/c.log" 2>&1 || { cat "$work/c.log"; echo "FAIL: fine-tuning run at 32 px"; exit 1; }
grep -q "loaded $count tensors; pos_embed: 4x4 grid resampled (bicubic) to 8x8" "$work/c.log" ||
  { grep pretrained "$work/c.log"; echo "FAIL: no pos_embed resampling in the report"; exit 1; }
echo "ok   32 px: $(grep -o 'pos_embed: .*' "$work/c.log")"

# Bad files: one line each, exit 2, no run directory (tests/lib/bad_input.sh checks $work/r).
set +e
printf 'not safetensors' > "$work/garbage.safetensors"
good=(train --config "$work/a.pbtxt" --set logging.run_dir="$work/r")
expect pretrained-missing "model.vit.pretrained: .*nothere.safetensors" -- "$ft" "${good[@]}" --set model.vit.pretrained="$work/nothere.safetensors"
expect pretrained-garbage "garbage.safetensors" -- "$ft" "${good[@]}" --set model.vit.pretrained="$work/garbage.safetensors"
expect pretrained-other-model "a.safetensors.*width|a.safetensors.*do not fit" -- \
  "$ft" "${good[@]}" --set model.vit.pretrained="$work/a.safetensors" --set model.vit.width=48
expect_last_rank pretrained-one-rank "elsewhere.safetensors" \
  "--set model.vit.pretrained=$work/elsewhere.safetensors" -- "$ft" "${good[@]}"
exit $fail
