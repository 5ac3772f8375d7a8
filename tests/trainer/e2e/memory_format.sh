#!/usr/bin/env bash
# distributed.memory_format through the binary: the CNN, MobileNetV2, the DCGAN and the VAE with its VGG loss train
# 4 steps on 2 ranks channels_last and contiguous, and log the same losses (within 5e-4 relative: only the order
# of the sums inside a convolution changes; measured on an AMD EPYC: CNN 1.2e-7, DCGAN 8.1e-5, VAE 4.6e-7); the log says which layout ran. The tiny MobileNetV2 (width 0.25,
# BatchNorm over 8 images, gradient norm ~300) is chaotic: the summation order alone (1 thread vs 2, contiguous
# both) moves its step-2 loss by 5 %, so for it the first step is compared: its loss (the forward) within 1e-4,
# its gradient norm within 1 %. The ViT is no convolutional model: channels_last asked for it says so and
# changes nothing.
# Usage: memory_format.sh FACETRAIN_BINARY
source "$(dirname "$0")/../../lib/e2e.sh"  # ft, work, run_config
"$ft" synth --output "$work/s32.h5" --count 120 --size 32 --seed 4 --quiet
train() {  # train NAME FORMAT
  mpirun --allow-run-as-root --oversubscribe --bind-to none -np 2 "$ft" train --config "$work/$1.pbtxt" --threads 1 \
    --quiet --set logging.run_dir="$work/$1-$2" --set distributed.memory_format="$2" > "$work/$1-$2.log" 2>&1 ||
    { cat "$work/$1-$2.log"; echo "FAIL: $1 $2"; exit 1; }
  grep -q "$3 weights and images (distributed.memory_format $2" "$work/$1-$2.log" ||
    { grep "device math" "$work/$1-$2.log"; echo "FAIL: $1 $2: the log does not say '$3'"; exit 1; }
}
losses() { grep -oE '"train/(loss|d_loss|g_loss|kl)": *[-0-9.e+]+' "$work/$1/metrics.jsonl" | grep -oE '[-0-9.e+]+$'; }
first_step() { head -1 "$work/$1/metrics.jsonl" | grep -oE '"train/(loss|grad_norm)": *[-0-9.e+]+' | grep -oE '[-0-9.e+]+$'; }
sections=('schedule { max_steps: 4 warmup_steps: 0 }' 'logging { every_steps: 1 }')
run_config "$work/cnn.pbtxt" 'cnn { width: 8 }' "$work/s32.h5" 8 val "${sections[@]}"
run_config "$work/mobilenet.pbtxt" 'mobilenet_v2 { width_mult: 0.25 }' "$work/s32.h5" 8 val "${sections[@]}"
run_config "$work/dcgan.pbtxt" 'dcgan { architecture: "seed32" z_size: 16 g_width: 16 d_width: 16 sample_count: 4 }' \
  "$work/s32.h5" 8 val "${sections[@]}"
run_config "$work/vae.pbtxt" 'vae { latent_size: 8 base_width: 8 sample_count: 4
  perceptual { weight: 0.1 allow_random_features: true layers: "relu1_1" } }' "$work/s32.h5" 8 val "${sections[@]}"
for model in cnn mobilenet dcgan vae; do
  train "$model" contiguous contiguous
  train "$model" channels_last channels_last
  if [[ $model == mobilenet ]]; then
    python3 - <(first_step "$model-contiguous") <(first_step "$model-channels_last") <<'PY'
import sys
(loss_a, norm_a), (loss_b, norm_b) = ([float(x) for x in open(p)] for p in sys.argv[1:3])
loss_diff, norm_diff = abs(loss_a - loss_b) / loss_a, abs(norm_a - norm_b) / norm_a
print(f"mobilenet: step 1 channels_last vs contiguous: loss {loss_diff:.1e}, gradient norm {norm_diff:.1e} relative")
assert loss_diff <= 1e-4 and norm_diff <= 1e-2, "mobilenet: channels_last changed the first step"
PY
    continue
  fi
  python3 - "$model" <(losses "$model-contiguous") <(losses "$model-channels_last") <<'PY'
import sys
name, a, b = sys.argv[1], [float(x) for x in open(sys.argv[2])], [float(x) for x in open(sys.argv[3])]
assert len(a) == len(b) >= 4, (name, len(a), len(b))
worst = max(abs(x - y) / max(abs(x), 1e-6) for x, y in zip(a, b))
print(f"{name}: {len(a)} logged losses, channels_last vs contiguous: worst relative difference {worst:.1e}")
assert worst <= 5e-4, f"{name}: channels_last changed the losses"
PY
done
vit_config "$work/vit.pbtxt" vit16 "$work/s32.h5" 8 val "${sections[@]}"
train vit channels_last contiguous
grep -q "not a convolutional model" "$work/vit-channels_last.log" || { echo "FAIL: vit: no 'not a convolutional model'"; exit 1; }
echo "PASS"
