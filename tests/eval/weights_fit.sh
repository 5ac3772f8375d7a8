#!/usr/bin/env bash
# eval never invents weights: a model whose head (class count), input size or kind does not fit the store or
# the run config is one line naming the file, what it has and what was expected, exit 2 — for a checkpoint,
# a facetrain export and a foreign safetensors file (the export without facetrain's metadata, timm names)
# alike. The same files on a store they fit evaluate (exit 0), so the refusals are about the fit alone.
# Usage: weights_fit.sh FACETRAIN_BINARY
source "$(dirname "$0")/../lib/bad_input.sh" "$1" 1
set -e
# Stores from folders of 8x8 PGM images, one folder per class: 3 and 10 classes at 16 px, 3 classes at 32 px.
python3 - "$work" <<'PY'
import os, sys
for name, classes in (("three", 3), ("ten", 10)):
    for c in range(classes):
        d = os.path.join(sys.argv[1], name + "-src", "class%d" % c)
        os.makedirs(d)
        for i in range(8):
            with open(os.path.join(d, "%d.pgm" % i), "wb") as f:
                f.write(b"P5\n8 8\n255\n" + bytes((c * 37 + i * 11 + p * 3) % 256 for p in range(64)))
PY
ingest() { "$ft" ingest --source folders --input "$work/$1-src" --output "$work/$2.h5" --size "$3" --channels 1 --quiet > /dev/null; }
ingest three three16 16
ingest ten ten16 16
ingest three three32 32

# A 3-class ViT trained 2 steps on 16 px, its export, and the export stripped of facetrain's metadata.
source "$(dirname "$0")/../lib/run_config.sh"
vit_config "$work/vit.pbtxt" vit16 "$work/three16.h5" 4 "" \
  'schedule { max_steps: 2 }' "logging { run_dir: \"$work/run3\" }"
"$ft" train --config "$work/vit.pbtxt" --threads 1 --quiet > "$work/train.log" 2>&1 || { cat "$work/train.log"; echo "FAIL: train"; exit 1; }
"$ft" export --checkpoint "$work/run3" --output "$work/vit3.safetensors" > /dev/null
python3 - "$work/vit3.safetensors" "$work/foreign3.safetensors" <<'PY'
import json, struct, sys
data = open(sys.argv[1], "rb").read()
n = struct.unpack("<Q", data[:8])[0]
header = json.loads(data[8:8 + n])
header.pop("__metadata__")
text = json.dumps(header).encode()
text += b" " * (-len(text) % 8)
open(sys.argv[2], "wb").write(struct.pack("<Q", len(text)) + text + data[8 + n:])
PY
sed 's/vit { patch_size: 4 width: 16 depth: 1 heads: 2 mlp_ratio: 2 }/mobilenet_v2 { }/' "$work/vit.pbtxt" > "$work/mobilenet.pbtxt"

m=(eval metrics --split all --threads 1 --output "$work/r")
set +e
expect checkpoint-classes "^error: --store: has 10 classes but the classifier in .*run3/checkpoints/.*\.ckpt has 3$" -- \
  "$ft" "${m[@]}" --checkpoint "$work/run3" --store "$work/ten16.h5"
expect checkpoint-size "^error: --store: images are 32x32x1 but the model in .*\.ckpt was trained on 16x16x1$" -- \
  "$ft" "${m[@]}" --checkpoint "$work/run3" --store "$work/three32.h5"
expect export-classes "^error: --store: has 10 classes but the classifier in .*vit3\.safetensors has 3$" -- \
  "$ft" "${m[@]}" --checkpoint "$work/vit3.safetensors" --model-config "$work/vit.pbtxt" --store "$work/ten16.h5"
expect export-kind "^error: .*vit3\.safetensors: holds a vit \(a facetrain export\) but the run config .*mobilenet\.pbtxt builds a mobilenet_v2$" -- \
  "$ft" "${m[@]}" --checkpoint "$work/vit3.safetensors" --model-config "$work/mobilenet.pbtxt" --store "$work/three32.h5"
expect foreign-classes "^error: .*foreign3\.safetensors: does not fit this vit \(head: 10 classes, checkpoint has 3\)" -- \
  "$ft" "${m[@]}" --checkpoint "$work/foreign3.safetensors" --model-config "$work/vit.pbtxt" --store "$work/ten16.h5"
expect foreign-size "^error: .*foreign3\.safetensors: does not fit this vit \(pos_embed: 4x4 grid resampled \(bicubic\) to 8x8\)" -- \
  "$ft" "${m[@]}" --checkpoint "$work/foreign3.safetensors" --model-config "$work/vit.pbtxt" --store "$work/three32.h5"
expect foreign-kind "^error: .*foreign3\.safetensors: lacks [0-9]+ tensor\(s\) this MobileNetV2 needs .*: features\.0\.0\.weight; .*; and [0-9]+ more$" -- \
  "$ft" "${m[@]}" --checkpoint "$work/foreign3.safetensors" --model-config "$work/mobilenet.pbtxt" --store "$work/three32.h5"
set -e

# Where they fit, the same files evaluate, and the export and the foreign file give the checkpoint's metrics.
for f in run3 vit3.safetensors foreign3.safetensors; do
  rm -rf "$work/r"
  "$ft" "${m[@]}" --checkpoint "$work/$f" --model-config "$work/vit.pbtxt" --store "$work/three16.h5" > "$work/fit.log" 2>&1 ||
    { cat "$work/fit.log"; echo "FAIL: $f on the store it fits"; fail=1; continue; }
  python3 -c 'import json, sys; m = json.load(open(sys.argv[1])); print("%.6f" % m["loss"])' "$work/r/metrics.json" > "$work/$f.loss"
done
rm -rf "$work/r"
[[ $fail -eq 0 ]] && cmp -s "$work/run3.loss" "$work/vit3.safetensors.loss" && cmp -s "$work/run3.loss" "$work/foreign3.safetensors.loss" ||
  { echo "FAIL: the checkpoint, its export and the foreign file do not give one loss"; fail=1; }
[[ $fail -eq 0 ]] && echo "PASS: every misfit is one line and exit 2; where they fit, one loss $(cat "$work/run3.loss")"
exit $fail
