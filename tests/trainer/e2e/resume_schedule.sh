#!/usr/bin/env bash
# End-to-end: the learning rate across a resume on another number of ranks. An `epochs` schedule follows the
# images consumed, so a run stopped on 3 ranks during its warm-up and resumed on 2 runs each step at the
# learning rate the unstopped 3-rank run has at the same number of images (metrics.jsonl's train/lr, to 1e-12
# relative), warm-up and cosine, across the epoch boundary; a `max_steps` schedule keeps its step count and
# says in the log what the new world size does to the images.
# Usage: resume_schedule.sh FACETRAIN_BINARY
set -euo pipefail
ft=$1
work=$(mktemp -d); echo "work dir $work"
trap '[[ -n "${KEEP:-}" ]] || rm -rf "$work"' EXIT
source "$(dirname "$0")/../../lib/run_config.sh"
batch=4
vit_config "$work/run.pbtxt" vit16 "$work/store.h5" $batch val \
  'optimizer { kind: "adamw" lr: 0.003 }' \
  'schedule { epochs: 2 warmup_steps: 6 min_lr_ratio: 0.1 }' \
  "logging { run_dir: \"$work/unused\" every_steps: 1 }"
"$ft" synth --output "$work/store.h5" --count 200 --size 16 --seed 5 --quiet
n=$("$ft" stats "$work/store.h5" | awk '$1 == "total" { print $2; exit }')  # images in the train split
train() {  # train RANKS STOP_AT_STEP RUN_DIR LOG [args...]: rank 0 signals itself after that step (0: never)
  local ranks=$1 stop=$2 dir=$3 log=$4; shift 4
  local env=()
  [[ $stop -gt 0 ]] && env=(env FACETRAIN_FAULT_SIGNAL_RANK=0 FACETRAIN_FAULT_SIGNAL_STEP="$stop")
  set +e
  "${env[@]}" mpirun --allow-run-as-root --oversubscribe --bind-to none -np "$ranks" \
    "$ft" train --config "$work/run.pbtxt" --set logging.run_dir="$dir" --threads 1 --quiet "$@" > "$log" 2>&1
  code=$?
  set -e
}

# The unstopped run on 3 ranks; the same stopped after step 4 (48 images: inside the 6-step warm-up), resumed on 2.
train 3 0 "$work/a" "$work/a.log"
[[ $code -eq 0 ]] || { cat "$work/a.log"; echo "FAIL: unstopped run: exit $code"; exit 1; }
train 3 4 "$work/b" "$work/b1.log"
[[ $code -eq 75 ]] || { cat "$work/b1.log"; echo "FAIL: 3 ranks: exit $code, expected 75"; exit 1; }
train 2 0 "$work/b" "$work/b2.log" --resume auto
[[ $code -eq 0 ]] || { cat "$work/b2.log"; echo "FAIL: resumed run on 2 ranks: exit $code"; exit 1; }
grep -q "resume: the learning rate follows the images consumed, not the steps: 48 of $((2 * n))" "$work/b2.log" ||
  { cat "$work/b2.log"; echo "FAIL: no schedule line on the 3 -> 2 resume"; exit 1; }

# Each logged step's images consumed before it: run a (3 ranks throughout), run b (3 ranks for 4 steps, then 2).
# An epoch ends when no whole step is left in it; the next one starts at image epoch x n.
python3 - "$n" "$work/a/metrics.jsonl" "$work/b/metrics.jsonl" <<'PY'
import json, sys
n = int(sys.argv[1])
def lrs(path):
    out = {}
    for line in open(path):
        r = json.loads(line)
        if "train/lr" in r: out[r["step"]] = r["train/lr"]
    return out
def images_before(sizes, steps):  # sizes(step) -> images of that step; {step: images of the order before it}
    out, epoch, used = {}, 0, 0
    for s in range(1, steps + 1):
        size = sizes(s)
        if n - used < size: epoch, used = epoch + 1, 0
        out[s] = epoch * n + used
        used += size
    return out
a, b = lrs(sys.argv[2]), lrs(sys.argv[3])
at_a = {v: s for s, v in images_before(lambda s: 12, max(a)).items()}
at_b = images_before(lambda s: 12 if s <= 4 else 8, max(b))
pairs = [(s, at_a[img], img) for s, img in at_b.items() if img in at_a]
bad = [(sb, sa, img, b[sb], a[sa]) for sb, sa, img in pairs if abs(b[sb] - a[sa]) > 1e-12 * abs(a[sa])]
if 5 not in dict((p[0], p) for p in pairs): sys.exit("FAIL: resumed step 5 (image 48) has no step of the unstopped run at image 48")
epochs_b = {img // n for _, _, img in pairs}
if len(pairs) < 6 or epochs_b != {0, 1}:
    sys.exit("FAIL: only %d steps to compare (epochs %s): the test no longer covers the schedule" % (len(pairs), epochs_b))
if bad:
    for sb, sa, img, lb, la in bad[:5]:
        print("resumed step %d lr %.17g, unstopped step %d lr %.17g (image %d)" % (sb, lb, sa, la, img))
    sys.exit("FAIL: %d of %d steps at the same images have another learning rate after the 3 -> 2 resume" % (len(bad), len(pairs)))
if abs(b[5] - a[5]) > 0 or not (0 < a[5] < 0.003):
    sys.exit("FAIL: the resume step's lr %r is not the warm-up's %r" % (b[5], a[5]))
print("PASS: %d steps of the 3 -> 2 resume at the unstopped run's images have its learning rate (resume step 5: %.6g, "
      "last pair %.6g)" % (len(pairs), b[5], b[pairs[-1][0]]))
PY

# max_steps counts steps: a world-size change keeps the curve over steps and says what it does to the images.
train 3 4 "$work/c" "$work/c1.log" --set schedule.max_steps=10
[[ $code -eq 75 ]] || { cat "$work/c1.log"; echo "FAIL: max_steps, 3 ranks: exit $code, expected 75"; exit 1; }
train 2 0 "$work/c" "$work/c2.log" --set schedule.max_steps=10 --resume auto
[[ $code -eq 0 ]] || { cat "$work/c2.log"; echo "FAIL: max_steps, resumed on 2 ranks: exit $code"; exit 1; }
want="resume: schedule.max_steps counts optimizer steps: the 6 steps left take 8 images each instead of 12, so the run trains on 24 fewer images than on 3 ranks"
grep -qF "$want" "$work/c2.log" || { cat "$work/c2.log"; echo "FAIL: no line '$want'"; exit 1; }
echo "PASS: max_steps resume 3 -> 2 says what it does to the images"
