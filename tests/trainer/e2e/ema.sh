#!/usr/bin/env bash
# End-to-end weight EMA on 2 ranks (the `ema` section): each epoch's validation runs on the raw and the EMA
# weights; a run stopped mid-epoch and resumed ends with the unstopped run's EMA weights bit for bit;
# `export --weights ema` and `eval metrics --weights ema` read the shadow, which differs from the raw weights;
# the VAE keeps one too. Asking a run without EMA for its EMA weights, or --weights bogus: one line, exit 2.
# Usage: ema.sh FACETRAIN_BINARY
source "$(dirname "$0")/../../lib/bad_input.sh" "$1" 1
set -e
mpirun_=(mpirun --allow-run-as-root --oversubscribe --bind-to none -np 2)
"$ft" synth --output "$work/s16.h5" --count 400 --size 16 --seed 3 --quiet
cat > "$work/a.pbtxt" <<CFG
model { vit { patch_size: 4 width: 32 depth: 2 heads: 2 mlp_ratio: 2 } }
data { store: "$work/s16.h5" batch_size: 16 val_split: "val" }
optimizer { kind: "adamw" lr: 0.003 }
schedule { epochs: 2 warmup_steps: 2 }
ema { decay: 0.9 warmup_power: 0.75 }
logging { run_dir: "$work/a" every_steps: 1 }
CFG
train() {  # train RUN_DIR LOG [args]
  local dir=$1 out=$2; shift 2
  "${mpirun_[@]}" "$ft" train --config "$work/a.pbtxt" --threads 1 --quiet --set logging.run_dir="$dir" "$@" > "$out" 2>&1
}
train "$work/a" "$work/a.log" || { cat "$work/a.log"; echo "FAIL: EMA run"; exit 1; }
for e in 0 1; do
  grep -q "^epoch $e val ema: loss" "$work/a.log" || { cat "$work/a.log"; echo "FAIL: no EMA validation in epoch $e"; exit 1; }
done
grep -q '"val_ema/accuracy"' "$work/a/metrics.jsonl" || { echo "FAIL: no val_ema/accuracy scalar"; exit 1; }
echo "ok   validation on both: $(grep '^epoch 1 val' "$work/a.log" | cut -d, -f1-2 | tr '\n' ';')"

set +e
FACETRAIN_FAULT_SIGNAL_RANK=1 FACETRAIN_FAULT_SIGNAL_STEP=7 train "$work/b" "$work/b1.log"; c1=$?
train "$work/b" "$work/b2.log" --resume auto; c2=$?
set -e
[[ "$c1 $c2" == "75 0" ]] || { cat "$work/b1.log" "$work/b2.log"; echo "FAIL: exits $c1 $c2, expected 75 0"; exit 1; }
tensor_bytes() { tail -c +$((9 + $(od -An -t u8 -N8 "$1" | tr -d ' '))) "$1"; }
for w in raw ema; do
  "$ft" export --checkpoint "$work/a" --weights $w --output "$work/a-$w.safetensors" > /dev/null
  "$ft" export --checkpoint "$work/b" --weights $w --output "$work/b-$w.safetensors" > /dev/null
  cmp -s <(tensor_bytes "$work/a-$w.safetensors") <(tensor_bytes "$work/b-$w.safetensors") ||
    { echo "FAIL: $w weights of the stopped+resumed run differ from the unstopped run's"; exit 1; }
done
! cmp -s <(tensor_bytes "$work/a-raw.safetensors") <(tensor_bytes "$work/a-ema.safetensors") ||
  { echo "FAIL: the EMA weights equal the raw weights"; exit 1; }
echo "ok   stopped at step 7 and resumed: raw and EMA weights bit for bit the unstopped run's; EMA != raw"

"$ft" eval metrics --checkpoint "$work/a" --weights ema --store "$work/s16.h5" --split val --output "$work/m" \
  > "$work/m.log" 2>&1 || { cat "$work/m.log"; echo "FAIL: eval metrics --weights ema"; exit 1; }
ema_loss=$(grep "^epoch 1 val ema" "$work/a.log" | grep -o 'loss [0-9.]*' | cut -d' ' -f2)
raw_loss=$(grep "^epoch 1 val:" "$work/a.log" | grep -o 'loss [0-9.]*' | cut -d' ' -f2)
eval_loss=$(grep -o '"loss": [0-9.]*' "$work/m/metrics.json" | head -1 | awk '{printf "%.4f", $2}')
[[ $eval_loss == "$ema_loss" && $ema_loss != "$raw_loss" ]] ||
  { echo "FAIL: eval --weights ema loss $eval_loss, the run's last EMA loss $ema_loss, raw $raw_loss"; exit 1; }
echo "ok   eval metrics --weights ema: loss $eval_loss, the run's last EMA validation figure (raw: $raw_loss)"

cat > "$work/vae.pbtxt" <<CFG
model { vae { latent_size: 8 base_width: 8 sample_count: 8 } }
data { store: "$work/s16.h5" batch_size: 16 val_split: "val" }
optimizer { kind: "adam" lr: 0.001 weight_decay: 0 }
schedule { epochs: 1 }
ema { decay: 0.8 }
logging { run_dir: "$work/v" }
CFG
"${mpirun_[@]}" "$ft" train --config "$work/vae.pbtxt" --threads 1 --quiet > "$work/v.log" 2>&1 ||
  { cat "$work/v.log"; echo "FAIL: VAE EMA run"; exit 1; }
grep -q "^epoch 0 val ema: reconstruction MSE" "$work/v.log" || { cat "$work/v.log"; echo "FAIL: no VAE EMA validation"; exit 1; }
echo "ok   VAE: $(grep '^epoch 0 val ema' "$work/v.log")"

set +e
"${mpirun_[@]}" "$ft" train --config "$work/a.pbtxt" --threads 1 --quiet --set logging.run_dir="$work/n" \
  --set ema.decay=0 --set schedule.max_steps=2 > "$work/n.log" 2>&1 || { cat "$work/n.log"; echo "FAIL: run without EMA"; exit 1; }
expect export-no-ema "no EMA weights" -- "$ft" export --checkpoint "$work/n" --weights ema --output "$work/r/x.safetensors"
expect export-bad-weights "--weights: 'bogus' is not raw or ema" -- \
  "$ft" export --checkpoint "$work/a" --weights bogus --output "$work/r/x.safetensors"
expect eval-no-ema "no EMA weights" -- "$ft" eval metrics --checkpoint "$work/n" --weights ema --store "$work/s16.h5" \
  --output "$work/r"
expect ema-decay "ema.decay: 1.5 is not in \(0, 1\)" -- "$ft" train --config "$work/a.pbtxt" --set ema.decay=1.5 \
  --set logging.run_dir="$work/r"
exit $fail
