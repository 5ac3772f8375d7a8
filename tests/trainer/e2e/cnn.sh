#!/usr/bin/env bash
# End-to-end model.cnn (seed 002's DCGAN discriminator with a logit per class) on 2 ranks, everywhere a
# classifier goes: `train` (validation each epoch, the parameter count of the seed's layout; the logged
# validation of the raw and the EMA weights is `eval metrics --split val` on the checkpoint), `eval metrics`,
# `eval mine`, `export` and `eval metrics` on the exported file; fine-tuning its head only; `eval attention`
# refuses it in one line, as `train` does stores whose side is not 4 * 2^n.
# Usage: cnn.sh FACETRAIN_BINARY
source "$(dirname "$0")/../../lib/bad_input.sh" "$1" 1
set -e
source "$(dirname "$0")/../../lib/classifier_e2e.sh"
train_classifier CNN 'cnn { width: 16 }'
# Width 16 on 32x32x3 with 2 classes: conv1 3*16*16 + conv2 16*32*16 + BN 2*32 + conv3 32*64*16 + BN 2*64
# + fc (64*16)*2 + 2 = 768 + 8192 + 64 + 32768 + 128 + 2050.
grep -q "^cnn: 43970 parameters, 3 stride-2 convs from 32x32" "$work/a.log" ||
  { grep "parameters" "$work/a.log"; echo "FAIL: not the seed's layout (43970 parameters)"; exit 1; }
echo "ok   train: $(grep '^cnn: [0-9]* parameters' "$work/a.log"); $(grep '^epoch 0 val' "$work/a.log")"

# BatchNorm across ranks: the ranks' running statistics are averaged before validation, so the validation the
# 2-rank run logged is that of the model it saved: `eval metrics --split val` on the checkpoint gives the same
# loss and accuracy to the logged digits (the same batch of 64 as the run's validation). The same holds for
# the EMA weights (`ema` section): the logged `val ema` is `eval metrics --weights ema` (the shadow with the
# averaged statistics the checkpoint keeps beside it).
logged_is_evaluated() {  # logged_is_evaluated RUN TAG WEIGHTS: the last "epoch N val[ TAG]:" line vs eval metrics
  local run=$1 tag=$2 weights=$3 logged evaluated
  "${mpirun_[@]}" "$ft" eval metrics --checkpoint "$work/$run" --weights "$weights" --store "$work/s.h5" --split val \
    --batch 64 --output "$work/$run-val" > "$work/$run-val.log" 2>&1 ||
    { cat "$work/$run-val.log"; echo "FAIL: eval metrics --split val --weights $weights"; exit 1; }
  logged=$(grep "^epoch [0-9]* val$tag: " "$work/$run.log" | tail -1 | sed -E 's/.*loss ([0-9.]+), accuracy ([0-9.]+),.*/\1 \2/')
  evaluated=$(python3 -c 'import json, sys; m = json.load(open(sys.argv[1])); print("%.4f %.4f" % (m["loss"], m["accuracy"]))' \
    "$work/$run-val/metrics.json")
  [[ -n "$logged" && "$logged" == "$evaluated" ]] ||
    { echo "FAIL: the run logged val$tag loss/accuracy '$logged', its checkpoint ($weights) evaluates to '$evaluated'"; exit 1; }
  echo "ok   the logged validation$tag (loss, accuracy $logged) is the saved model's ($weights weights)"
}
logged_is_evaluated a "" raw
"${mpirun_[@]}" "$ft" train --config "$work/a.pbtxt" --threads 1 --quiet --set logging.run_dir="$work/e" \
  --set ema.decay=0.5 > "$work/e.log" 2>&1 || { cat "$work/e.log"; echo "FAIL: CNN with EMA"; exit 1; }
logged_is_evaluated e " ema" ema
[[ $(grep '^epoch 0 val ema: ' "$work/e.log" | cut -d, -f1) != $(grep '^epoch 0 val: ' "$work/e.log" | cut -d, -f1) ]] ||
  { grep '^epoch 0 val' "$work/e.log"; echo "FAIL: the EMA validation is the raw weights'"; exit 1; }

metrics_and_mine CNN

# The exported file gives the checkpoint's metrics exactly (the same weights, another container).
"$ft" export --checkpoint "$work/a" --output "$work/a.safetensors" > /dev/null
"$ft" eval metrics --checkpoint "$work/a.safetensors" --model-config "$work/a.pbtxt" --store "$work/s.h5" \
  --split test --output "$work/m2" > "$work/m2.log" 2>&1 || { cat "$work/m2.log"; echo "FAIL: eval of the export"; exit 1; }
a=$(grep -o '"accuracy": *[0-9.e-]*' "$work/m/metrics.json"); b=$(grep -o '"accuracy": *[0-9.e-]*' "$work/m2/metrics.json")
[[ -n "$a" && "$a" == "$b" ]] || { echo "FAIL: export's $b vs checkpoint's $a"; exit 1; }
echo "ok   the export evaluates as its checkpoint ($a)"

# data.normalize_on device (a GPU run's default) on CPU: uint8 batches normalized by the trainer give the
# host path's losses (the same pixels; float rounding may differ in the last bit).
"${mpirun_[@]}" "$ft" train --config "$work/a.pbtxt" --threads 1 --quiet --set logging.run_dir="$work/d" \
  --set data.normalize_on=device > "$work/d.log" 2>&1 || { cat "$work/d.log"; echo "FAIL: data.normalize_on device"; exit 1; }
grep -q "applied on the device to uint8 batches (data.normalize_on device)" "$work/d.log" ||
  { grep "normalization" "$work/d.log"; echo "FAIL: no device normalization line"; exit 1; }
grep -q "applied on the host by the loader (data.normalize_on auto)" "$work/a.log" ||
  { grep "normalization" "$work/a.log"; echo "FAIL: a CPU run's auto is not the host"; exit 1; }
losses() { grep -o '"train/loss": *[-0-9.eE+]*' "$1" | sed 's/.*: *//'; }
paste <(losses "$work/a/metrics.jsonl") <(losses "$work/d/metrics.jsonl") |
  awk '{ n++; d = $1 - $2; if (d < 0) d = -d; if (d > 1e-4 * ($1 < 0 ? -$1 : $1) + 1e-6) bad++ }
       END { if (n != 6 || bad) { print "FAIL: " n " steps, " bad + 0 " losses differ"; exit 1 } }' ||
  { paste <(losses "$work/a/metrics.jsonl") <(losses "$work/d/metrics.jsonl"); exit 1; }
echo "ok   data.normalize_on device: the host run's 6 losses (first $(losses "$work/d/metrics.jsonl" | head -1))"

# Head only: the convs stay frozen.
"${mpirun_[@]}" "$ft" train --config "$work/a.pbtxt" --threads 1 --quiet --set logging.run_dir="$work/b" \
  --set trainable.train=head > "$work/b.log" 2>&1 || { cat "$work/b.log"; echo "FAIL: head-only training"; exit 1; }
grep -q "parameters train (.*head" "$work/b.log" || { grep "train" "$work/b.log"; echo "FAIL: not the head only"; exit 1; }
echo "ok   head only: $(grep -o '[0-9,]* of [0-9,]* parameters train.*' "$work/b.log" | head -1 | cut -c1-120)"

set +e
expect attention-not-vit "holds a cnn model; this command needs a model with attention maps \(vit\)" -- \
  "$ft" eval attention --checkpoint "$work/a" --store "$work/s.h5" --output "$work/r"
"$ft" synth --output "$work/side24.h5" --count 100 --size 24 --seed 5 --quiet
expect side-not-power-of-two "the CNN needs images of 4 \* 2\^n pixels" -- \
  "$ft" train --config "$work/a.pbtxt" --set data.store="$work/side24.h5" --set logging.run_dir="$work/r"
expect zero-width "model.cnn.width must be positive" -- \
  "$ft" train --config "$work/a.pbtxt" --set model.cnn.width=0 --set logging.run_dir="$work/r"
expect normalize-on "field 'data.normalize_on' must be auto, host or device \\(got 'gpu'\\)" -- \
  "$ft" train --config "$work/a.pbtxt" --set data.normalize_on=gpu --set logging.run_dir="$work/r"
exit $fail
