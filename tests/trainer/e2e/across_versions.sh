#!/usr/bin/env bash
# Checkpoints belong to no LibTorch version: a run trained by one build (THIS: the LibTorch 2.x build a GPU
# cluster runs) is evaluated, exported and resumed by the other (OTHER: the default LibTorch 1.13 build a laptop
# runs), and the other way round.
#  - 2 ranks train a tiny ViT with THIS; `eval metrics` by OTHER gives the metrics.json THIS gives (the counts and
#    the confusion matrix exactly; loss, AUC and the rates within 1e-5: two BLAS libraries sum in other orders);
#  - OTHER exports it (safetensors) and resumes it (`--resume auto`) to more steps;
#  - OTHER trains a run, THIS resumes it and evaluates it.
# Usage: across_versions.sh THIS_BINARY OTHER_BINARY   (OTHER missing: skipped, a failure under CI=true)
set -uo pipefail
this=$1 other=$2
source "$(dirname "$0")/../../lib/skip.sh"
[[ -x "$other" ]] || skip_unless_ci "no binary of the other LibTorch build at $other (test.sh --full builds both)"
work=$(mktemp -d)
trap 'pkill -f "$work" 2>/dev/null; [[ -n "${KEEP:-}" ]] || rm -rf "$work"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
mpirun_=(mpirun --allow-run-as-root --oversubscribe --bind-to none -np 2)
version() { "$1" --version 2>/dev/null | grep -o 'LibTorch [0-9.]*' | head -1; }
echo "this: $this ($(version "$this")); other: $other ($(version "$other"))"

"$this" synth --output "$work/s.h5" --count 300 --size 16 --seed 3 --quiet || fail "synth"
source "$(dirname "$0")/../../lib/run_config.sh"
vit_config "$work/run.pbtxt" vit16 "$work/s.h5" 16 val \
  'optimizer { kind: "adamw" lr: 0.003 }' \
  'schedule { max_steps: 6 }' \
  "logging { run_dir: \"$work/unused\" every_steps: 1 }"
# train BINARY RUN_DIR STEPS [--resume auto]
train() {
  local bin=$1 dir=$2 steps=$3; shift 3
  "${mpirun_[@]}" "$bin" train --config "$work/run.pbtxt" --threads 1 --quiet --set logging.run_dir="$dir" \
    --set schedule.max_steps="$steps" "$@" > "$dir.log" 2>&1 || { cat "$dir.log"; fail "$bin train $dir $*"; }
}
# metrics BINARY RUN_DIR OUT: eval metrics on the test split
metrics() {
  "$1" eval metrics --checkpoint "$2" --store "$work/s.h5" --split test --batch 32 --output "$3" > "$3.log" 2>&1 ||
    { cat "$3.log"; fail "$1 eval metrics $2"; }
}
# same_metrics A.json B.json: equal but for the checkpoint path, floats within 1e-5
same_metrics() {
  python3 - "$1" "$2" <<'PY'
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
def diff(x, y, where):
    if isinstance(x, dict) and isinstance(y, dict):
        if set(x) != set(y): return f"{where}: keys {sorted(set(x) ^ set(y))}"
        return next((d for k in x if k != "checkpoint" for d in [diff(x[k], y[k], f"{where}.{k}")] if d), None)
    if isinstance(x, list) and isinstance(y, list):
        if len(x) != len(y): return f"{where}: {len(x)} vs {len(y)} entries"
        return next((d for i, (p, q) in enumerate(zip(x, y)) for d in [diff(p, q, f"{where}[{i}]")] if d), None)
    if isinstance(x, float) or isinstance(y, float):
        return None if abs(x - y) <= 1e-5 else f"{where}: {x} vs {y}"
    return None if x == y else f"{where}: {x!r} vs {y!r}"
d = diff(a, b, "metrics")
if d: print(d); sys.exit(1)
PY
}

# 1. THIS trains; OTHER evaluates, exports and resumes.
train "$this" "$work/a" 6
metrics "$this" "$work/a" "$work/a-this"
metrics "$other" "$work/a" "$work/a-other"
same_metrics "$work/a-this/metrics.json" "$work/a-other/metrics.json" ||
  fail "metrics.json of a $(version "$this") run differs when $(version "$other") evaluates it"
"$other" export --checkpoint "$work/a" --output "$work/a.safetensors" > "$work/export.log" 2>&1 ||
  { cat "$work/export.log"; fail "$(version "$other") cannot export a $(version "$this") checkpoint"; }
train "$other" "$work/a" 9 --resume auto
grep -q "resum" "$work/a.log" || { cat "$work/a.log"; fail "the run did not say it resumed"; }
[[ $(grep -c '"train/loss"' "$work/a/metrics.jsonl") == 9 ]] ||
  fail "$(version "$other") resumed but metrics.jsonl has not 9 steps: $(grep -c '"train/loss"' "$work/a/metrics.jsonl")"
echo "ok   $(version "$this") -> $(version "$other"): eval metrics identical, export, resume from step 6 to 9"

# 2. OTHER trains; THIS resumes and evaluates.
train "$other" "$work/b" 6
train "$this" "$work/b" 9 --resume auto
[[ $(grep -c '"train/loss"' "$work/b/metrics.jsonl") == 9 ]] || fail "$(version "$this") did not resume to step 9"
metrics "$this" "$work/b" "$work/b-this"
metrics "$other" "$work/b" "$work/b-other"
same_metrics "$work/b-this/metrics.json" "$work/b-other/metrics.json" || fail "metrics.json differ for run b"
echo "ok   $(version "$other") -> $(version "$this"): resume from step 6 to 9, eval metrics identical"
