#!/usr/bin/env bash
# End-to-end: N real MPI ranks train a tiny ViT; a second run gets SIGUSR1 on ONE rank mid-run, every rank
# stops at the same step with exit code 75 after a checkpoint, `--resume auto` finishes it, and the per-step
# losses and the final parameters and buffers (exported, compared byte for byte) of the stopped+resumed run
# equal those of the uninterrupted run (CPU, same thread count).
# Usage: train_resume.sh FACETRAIN_BINARY RANKS [vit|dcgan|vae] [USR1|USR2|TERM]
set -euo pipefail
ft=$1
ranks=$2
kind=${3:-vit}
signal=${4:-USR1}  # checkpoint.preemption_signal, and what rank 1 is sent
work=$(mktemp -d); echo "work dir $work"
trap 'pkill -f "$work" 2>/dev/null || true; [[ -n "${KEEP:-}" ]] || rm -rf "$work"' EXIT
mpirun_=(mpirun --allow-run-as-root --oversubscribe --bind-to none -np "$ranks")

"$ft" synth --output "$work/store.h5" --count 1200 --size 16 --seed 3 --quiet
steps=30
case $kind in
  vit) model='vit { patch_size: 4 width: 32 depth: 2 heads: 2 mlp_ratio: 2 }'
       steps=100  # ~10-20 ms a step: 30 left too little room for the signal to land before the end
       optimizer='kind: "adamw" lr: 0.003 grad_clip_norm: 1.0' ;;
  dcgan) model='dcgan { architecture: "seed32" z_size: 16 g_width: 16 d_width: 16 sample_count: 16 }'
         steps=300  # a step takes milliseconds: enough of them for the signal to land mid-run
         optimizer='kind: "adam" lr: 0.0002 beta1: 0.5 weight_decay: 0' ;;
  vae) model='vae { latent_size: 8 base_width: 8 kl_weight: 0.001 sample_count: 8
                    perceptual { weight: 0.1 allow_random_features: true layers: "relu1_1" } }'
       optimizer='kind: "adam" lr: 0.001 weight_decay: 0' ;;
  *) echo "unknown model kind $kind"; exit 2 ;;
esac
cat > "$work/run.pbtxt" <<CFG
model { $model }
data { store: "$work/store.h5" batch_size: 16 val_split: "val" }
optimizer { $optimizer }
schedule { max_steps: $steps warmup_steps: 5 }
checkpoint { preemption_signal: "$signal" }
logging { run_dir: "$work/unused" every_steps: 1 }
CFG

losses() {  # "step loss" per line for the train/loss records of a metrics.jsonl
  grep '"train/loss"' "$1" | sed -E 's/.*"step": *([0-9]+).*"train\/loss": *([-0-9.eE+]+).*/\1 \2/'
}

# 1. Uninterrupted reference run.
"${mpirun_[@]}" "$ft" train --config "$work/run.pbtxt" --set logging.run_dir="$work/a" --threads 1 --quiet \
  > "$work/a.log" 2>&1 || { cat "$work/a.log"; echo "FAIL: reference run failed"; exit 1; }
[[ $(losses "$work/a/metrics.jsonl" | wc -l) -eq $steps ]] || { echo "FAIL: reference run has not $steps loss records"; exit 1; }

# 2. The same run, SIGUSR1 to rank 1 only once it has logged step 8.
"${mpirun_[@]}" "$ft" train --config "$work/run.pbtxt" --set logging.run_dir="$work/b" --threads 1 --quiet \
  > "$work/b1.log" 2>&1 &
job=$!
for _ in $(seq 1 600); do
  [[ -f "$work/b/metrics.jsonl" ]] && [[ $(losses "$work/b/metrics.jsonl" | wc -l) -ge 8 ]] && break
  sleep 0.1
done
rank1=""
for p in $(pgrep -f "logging.run_dir=$work/b"); do
  if tr '\0' '\n' < /proc/$p/environ 2>/dev/null | grep -q '^OMPI_COMM_WORLD_RANK=1$'; then rank1=$p; fi
done
[[ -n "$rank1" ]] || { echo "FAIL: rank 1 not found"; exit 1; }
kill -"$signal" "$rank1"
set +e; wait "$job"; code=$?; set -e
# 75, not a death by the signal's default action: the ranks handled checkpoint.preemption_signal.
[[ $code -eq 75 ]] || { cat "$work/b1.log"; echo "FAIL: stopped run exited $code, expected 75"; exit 1; }
grep -q "stop requested" "$work/b1.log" || { echo "FAIL: no stop message"; exit 1; }
stopped_at=$(losses "$work/b/metrics.jsonl" | tail -1 | cut -d' ' -f1)
ls "$work/b/checkpoints/" | grep -q "checkpoint-0*${stopped_at}.ckpt" || {
  ls "$work/b/checkpoints/"; echo "FAIL: no checkpoint at the stop step $stopped_at"; exit 1; }
[[ $stopped_at -lt $steps ]] || { echo "FAIL: the signal arrived too late to test a resume"; exit 1; }

# 3. Resume and finish.
"${mpirun_[@]}" "$ft" train --config "$work/run.pbtxt" --set logging.run_dir="$work/b" --threads 1 --quiet \
  --resume auto > "$work/b2.log" 2>&1 || { cat "$work/b2.log"; echo "FAIL: resumed run failed"; exit 1; }
grep -q "resumed from .*at step $stopped_at" "$work/b2.log" || { cat "$work/b2.log"; echo "FAIL: no resume line"; exit 1; }

if ! diff <(losses "$work/a/metrics.jsonl") <(losses "$work/b/metrics.jsonl"); then
  echo "FAIL: losses of the stopped+resumed run differ from the uninterrupted run (stopped at $stopped_at)"
  exit 1
fi
# Every parameter and buffer (BatchNorm statistics included) of the final model, bit for bit.
"$ft" export --checkpoint "$work/a" --output "$work/a.safetensors" > /dev/null 2>&1 || { echo "FAIL: export a"; exit 1; }
"$ft" export --checkpoint "$work/b" --output "$work/b.safetensors" > /dev/null 2>&1 || { echo "FAIL: export b"; exit 1; }
tensor_bytes() {  # a safetensors file past its JSON header (which names each run's own directory)
  tail -c +$((9 + $(od -An -t u8 -N8 "$1" | tr -d ' '))) "$1"
}
cmp -s <(tensor_bytes "$work/a.safetensors") <(tensor_bytes "$work/b.safetensors") ||
  { echo "FAIL: the final parameters or buffers of the stopped+resumed run differ from the uninterrupted run's"; exit 1; }
echo "PASS: $kind on $ranks ranks stopped at step $stopped_at by SIG$signal on rank 1, resumed, $steps losses and" \
     "every parameter and buffer identical"
