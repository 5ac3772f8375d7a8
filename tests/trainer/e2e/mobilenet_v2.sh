#!/usr/bin/env bash
# End-to-end MobileNetV2 (seed 004's classifier) on 2 ranks, everywhere a classifier goes: `train` (the last
# 2 blocks and the head, from its own export with another class count: the head made fresh and named),
# `eval metrics`, `eval mine`; fine-tuning the last 2 blocks and the head from its own export (a new head
# for another class count is a unit test: models/mobilenet_v2_test.cpp); `eval attention` refuses it in one
# line (attention maps are a ViT feature), as `train` does images under 32 px.
# Usage: mobilenet_v2.sh FACETRAIN_BINARY
source "$(dirname "$0")/../../lib/bad_input.sh" "$1" 1
set -e
source "$(dirname "$0")/../../lib/classifier_e2e.sh"
train_classifier MobileNetV2 'mobilenet_v2 { width_mult: 0.25 }'
echo "ok   train: $(grep '^mobilenet_v2: [0-9]* parameters' "$work/a.log"); $(grep '^epoch 0 val' "$work/a.log")"

metrics_and_mine MobileNetV2

# Its export, a file with torchvision's names: every tensor loaded; the last 2 blocks and the head train.
"$ft" export --checkpoint "$work/a" --output "$work/a.safetensors" > /dev/null
"${mpirun_[@]}" "$ft" train --config "$work/a.pbtxt" --threads 1 --quiet \
  --set logging.run_dir="$work/b" --set model.mobilenet_v2.pretrained="$work/a.safetensors" \
  --set trainable.train=head --set trainable.last_blocks=2 > "$work/b.log" 2>&1 ||
  { cat "$work/b.log"; echo "FAIL: fine-tuning from the export"; exit 1; }
grep -q "mobilenet_v2: model.mobilenet_v2.pretrained .*: loaded [0-9]* tensors" "$work/b.log" ||
  { cat "$work/b.log"; echo "FAIL: no loading report"; exit 1; }
grep -q "parameters train (.*: head, blocks 17-18 of 18)" "$work/b.log" ||
  { grep "train" "$work/b.log"; echo "FAIL: not the head and the last 2 blocks"; exit 1; }
echo "ok   fine-tune: $(grep -o 'pretrained .*' "$work/b.log" | head -1 | cut -c1-160)"

set +e
expect attention-not-vit "holds a mobilenet_v2 model; this command needs a model with attention maps \(vit\)" -- \
  "$ft" eval attention --checkpoint "$work/a" --store "$work/s.h5" --output "$work/r"
"$ft" synth --output "$work/small.h5" --count 100 --size 16 --seed 5 --quiet
expect small-images "MobileNetV2 needs images of at least 32x32" -- \
  "$ft" train --config "$work/a.pbtxt" --set data.store="$work/small.h5" --set logging.run_dir="$work/r"
exit $fail
