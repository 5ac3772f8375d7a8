# Shared by the end-to-end tests of one classifier kind (tests/trainer/e2e/cnn.sh, mobilenet_v2.sh): source it
# after lib/bad_input.sh (which sets ft and work). Each step prints an "ok" line or exits 1 with the log.
# shellcheck shell=bash
mpirun_=(mpirun --allow-run-as-root --oversubscribe --bind-to none -np 2)

# train_classifier KIND 'MODEL { ... }': a 300-image 32 px store (s.h5), a.pbtxt, and 6 steps on 2 ranks into
# run a/, with validation each epoch.
train_classifier() {
  local kind=$1 model=$2
  "$ft" synth --output "$work/s.h5" --count 300 --size 32 --seed 5 --quiet
  cat > "$work/a.pbtxt" <<CFG
model { $model }
data { store: "$work/s.h5" batch_size: 16 val_split: "val" }
optimizer { kind: "adamw" lr: 0.003 }
schedule { max_steps: 6 }
logging { run_dir: "$work/a" every_steps: 1 }
CFG
  "${mpirun_[@]}" "$ft" train --config "$work/a.pbtxt" --threads 1 --quiet > "$work/a.log" 2>&1 ||
    { cat "$work/a.log"; echo "FAIL: $kind training"; exit 1; }
  grep -q "^epoch 0 val: loss" "$work/a.log" || { cat "$work/a.log"; echo "FAIL: no validation line"; exit 1; }
}

# metrics_and_mine KIND: eval metrics (test split, into m/) and eval mine read run a/'s checkpoint.
metrics_and_mine() {
  "${mpirun_[@]}" "$ft" eval metrics --checkpoint "$work/a" --store "$work/s.h5" --split test --output "$work/m" \
    > "$work/m.log" 2>&1 || { cat "$work/m.log"; echo "FAIL: eval metrics"; exit 1; }
  grep -q '"accuracy"' "$work/m/metrics.json" || { echo "FAIL: no metrics.json"; exit 1; }
  "${mpirun_[@]}" "$ft" eval mine --checkpoint "$work/a" --store "$work/s.h5" --class 1 --threshold 0.01 \
    --output "$work/mine" > "$work/mine.log" 2>&1 || { cat "$work/mine.log"; echo "FAIL: eval mine"; exit 1; }
  echo "ok   eval metrics and eval mine read the $1 checkpoint"
}
