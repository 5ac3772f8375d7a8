#!/usr/bin/env bash
# Seed 004 end to end on 2 ranks, tiny: a VAE trains; a CNN classifier trains and `eval mine` picks training
# images with it; the VAE fine-tunes on those alone (model.vae.init_from the first run, model.vae.subset the
# mined.csv, kl_weight 0.02, only the decoder's last 2 blocks and output conv training). Then, tensor by
# tensor against the first run's export: the encoder, its BatchNorm running statistics included (frozen
# BatchNorm runs in eval mode), and every other frozen tensor are bit for bit the start; exactly the decoder's
# trained blocks and output conv moved. With trainable.freeze_batchnorm false the encoder's statistics move
# (so the check above can fail).
# Usage: seed004_finetune.sh FACETRAIN_BINARY
source "$(dirname "$0")/../../lib/bad_input.sh" "$1" 1
set -e
diff_tool="/usr/bin/python3 $(dirname "$0")/../../lib/safetensors_diff.py"
mpirun_=(mpirun --allow-run-as-root --oversubscribe --bind-to none -np 2)
"$ft" synth --output "$work/s.h5" --count 300 --size 16 --seed 4 --quiet
train() {  # train CONFIG LOG [args]: 2 ranks
  local config=$1 out=$2; shift 2
  "${mpirun_[@]}" "$ft" train --config "$config" --threads 1 --quiet "$@" > "$out" 2>&1 ||
    { cat "$out"; echo "FAIL: training $config $*"; exit 1; }
}

# 1. The VAE to start from, and the classifier that mines.
source "$(dirname "$0")/../../lib/run_config.sh"
run_config "$work/vae.pbtxt" 'vae { latent_size: 8 base_width: 8 sample_count: 4 }' "$work/s.h5" 16 val \
  'optimizer { kind: "adam" lr: 0.001 weight_decay: 0 }' 'schedule { max_steps: 4 }' "logging { run_dir: \"$work/v\" }"
train "$work/vae.pbtxt" "$work/v.log"
"$ft" export --checkpoint "$work/v" --output "$work/v.safetensors" > /dev/null
run_config "$work/cnn.pbtxt" 'cnn { width: 8 }' "$work/s.h5" 16 val \
  'optimizer { kind: "adamw" lr: 0.003 }' 'schedule { max_steps: 4 }' "logging { run_dir: \"$work/c\" }"
train "$work/cnn.pbtxt" "$work/c.log"
"${mpirun_[@]}" "$ft" eval mine --checkpoint "$work/c" --store "$work/s.h5" --split train --class 1 \
  --threshold 0.47 --output "$work/mine" > "$work/mine.log" 2>&1 || { cat "$work/mine.log"; echo "FAIL: eval mine"; exit 1; }
mined=$(($(wc -l < "$work/mine/mined.csv") - 1))
train_images=$(grep -o '[0-9]* of [0-9]* images passed' "$work/mine.log" | awk '{print $3}')
# At least a batch per rank, and fewer than the split: a subset the fine-tune must be seen to use.
((mined >= 32 && mined < train_images)) ||
  { cat "$work/mine.log"; echo "FAIL: mined $mined of $train_images training images (want 32 to all but one)"; exit 1; }
echo "ok   a VAE and a CNN trained; eval mine picked $mined of $train_images training images"

# 2. The fine-tune: the first VAE, on the mined images, KL 0.02, the decoder's last 2 blocks and output conv.
cat > "$work/fine.pbtxt" <<CFG
model { vae { latent_size: 8 base_width: 8 sample_count: 4 kl_weight: 0.02
              init_from: "$work/v" subset: "$work/mine/mined.csv" } }
trainable { train: "head" last_blocks: 2 }
data { store: "$work/s.h5" batch_size: 16 val_split: "val" }
optimizer { kind: "adam" lr: 0.001 weight_decay: 0 }
schedule { max_steps: 4 }
logging { run_dir: "$work/f" }
CFG
train "$work/fine.pbtxt" "$work/f.log"
grep -q "^vae: fine-tuning from $work/v" "$work/f.log" || { cat "$work/f.log"; echo "FAIL: no init_from line"; exit 1; }
grep -q "^vae: training on the $mined images of model.vae.subset $work/mine/mined.csv" "$work/f.log" ||
  { cat "$work/f.log"; echo "FAIL: not trained on the $mined mined images"; exit 1; }
grep -q "^vae: $((mined / 32 * 32)) images/epoch" "$work/f.log" ||  # whole steps of 2 ranks x 16
  { grep "images/epoch" "$work/f.log"; echo "FAIL: an epoch is not the $mined mined images"; exit 1; }
grep -q "parameters train (.*: head, blocks 5-6 of 6)" "$work/f.log" ||
  { grep "train" "$work/f.log"; echo "FAIL: not the decoder's last 2 blocks and the output conv"; exit 1; }
"$ft" export --checkpoint "$work/f" --output "$work/f.safetensors" > /dev/null
moved() { $diff_tool "$work/v.safetensors" "$1" | awk '$1 != "same" {print $2}' | tr '\n' ' '; }
# The 16 px VAE: encoder.0-1, conv_mu/logvar, decoder.0-2, conv_out; the trained ones are decoder.1-2 and
# conv_out, weights and BatchNorm statistics alike.
expected=$($diff_tool "$work/v.safetensors" "$work/v.safetensors" | awk '{print $2}' |
  grep -E '^(decoder\.[12]|conv_out)\.' | tr '\n' ' ')
[[ $expected == *decoder.2.bn2.running_mean* ]] || { echo "FAIL: unexpected export layout: $expected"; exit 1; }
[[ $(moved "$work/f.safetensors") == "$expected" ]] ||
  { echo "FAIL: moved: $(moved "$work/f.safetensors"); expected: $expected"; exit 1; }
encoder=$($diff_tool "$work/v.safetensors" "$work/f.safetensors" | grep -c ' encoder\.')
grep -Eq "^[0-9]+ BatchNorm layers with frozen weights run in eval mode" "$work/f.log" ||
  { cat "$work/f.log"; echo "FAIL: no line on the frozen BatchNorm layers"; exit 1; }
echo "ok   fine-tuned: the $encoder encoder tensors (BatchNorm statistics too) and the other frozen ones bit for" \
  "bit the start; exactly the $(wc -w <<<"$expected") tensors of decoder.1, decoder.2 and conv_out moved"

# 3. PyTorch's plain behaviour moves the frozen encoder's statistics: the check above sees a change.
train "$work/fine.pbtxt" "$work/p.log" --set logging.run_dir="$work/p" --set trainable.freeze_batchnorm=false
"$ft" export --checkpoint "$work/p" --output "$work/p.safetensors" > /dev/null
[[ $(moved "$work/p.safetensors") == *encoder.0.bn1.running_mean* ]] ||
  { echo "FAIL: freeze_batchnorm false: the encoder's statistics did not move: $(moved "$work/p.safetensors")"; exit 1; }
echo "ok   trainable.freeze_batchnorm false: the encoder's BatchNorm statistics move"
exit $fail
