#!/usr/bin/env bash
# End-to-end --profile on 2 ranks: `train --profile 3:5` writes RUN_DIR/profile/rank-{0,1}.trace.json, Chrome
# traces (checked with Python's json) holding the named phases of steps 3-5 only and a range per gradient
# bucket per step on its own track; `doctor --trace` merges them, one process per rank, and the clocks line up:
# no bucket's all-reduce completes on one rank before the other rank launched it. `bench step --profile` writes
# the same. Bad windows: one line naming the flag or field, exit 2, no run directory.
# Usage: profile.sh FACETRAIN_BINARY
source "$(dirname "$0")/../../lib/bad_input.sh" "$1" 2
set -e
source "$(dirname "$0")/../../lib/run_config.sh"
mpirun_=(mpirun --allow-run-as-root --oversubscribe --bind-to none -np 2)
"$ft" synth --output "$work/s16.h5" --count 200 --size 16 --seed 3 --quiet
# Small buckets: several per step, so the ranges overlap the backward pass.
vit_config "$work/p.pbtxt" vit32 "$work/s16.h5" 8 val \
  'optimizer { kind: "adamw" lr: 0.003 }' 'schedule { max_steps: 7 }' \
  'distributed { bucket_cap_mb: 0.02 first_bucket_mb: 0.005 }' \
  "logging { run_dir: \"$work/p\" every_steps: 1 }"
"${mpirun_[@]}" "$ft" train --config "$work/p.pbtxt" --threads 1 --quiet --profile 3:5 > "$work/p.log" 2>&1 ||
  { cat "$work/p.log"; echo "FAIL: training with --profile"; exit 1; }
grep -q "profile: LibTorch's profiler records steps 3-5 on every rank" "$work/p.log" ||
  { cat "$work/p.log"; echo "FAIL: no profile plan line"; exit 1; }
grep -q "profile: .*rank-0.trace.json and the other ranks' beside it" "$work/p.log" ||
  { cat "$work/p.log"; echo "FAIL: no line naming the traces"; exit 1; }
merged=$("$ft" doctor --trace "$work/p")
[[ $merged == "$work/p/profile/merged.trace.json" ]] || { echo "FAIL: doctor --trace printed '$merged'"; exit 1; }

python3 - "$work/p/profile" <<'PY'
import json, sys, collections
d = sys.argv[1]
phases = ["data wait", "host-to-device copy", "forward", "backward", "gradient sync wait", "optimizer"]
for rank in (0, 1):
    t = json.load(open(f"{d}/rank-{rank}.trace.json"))
    ev = [e for e in t["traceEvents"] if e.get("ph") == "X"]
    names = collections.Counter(e["name"] for e in ev)
    steps = sorted(n for n in names if n.startswith("step "))
    assert steps == ["step 3", "step 4", "step 5"], f"rank {rank}: step ranges {steps}"
    for p in phases:
        assert names[p] >= 3, f"rank {rank}: phase '{p}' {names[p]} times, expected one per step"
    buckets = {n: c for n, c in names.items() if n.startswith("all-reduce: gradient bucket ")}
    assert len(buckets) >= 2, f"rank {rank}: bucket ranges {buckets}"
    assert all(c == 3 for c in buckets.values()), f"rank {rank}: a range per bucket per step: {buckets}"
    tids = {e["tid"] for e in ev if e["name"] in buckets}
    assert len(tids) == len(buckets), f"rank {rank}: each bucket on a track of its own: {tids}"
    assert all(e["pid"] == rank for e in ev), f"rank {rank}: events of another pid"
    # Every step's phases lie inside its step range, on the training thread.
    step_ranges = [(e["ts"], e["ts"] + e["dur"], e["tid"]) for e in ev if e["name"].startswith("step ")]
    for e in ev:
        if e["name"] in phases:
            assert any(a <= e["ts"] and e["ts"] + e["dur"] <= b + 1 and tid == e["tid"] for a, b, tid in step_ranges), \
                f"rank {rank}: '{e['name']}' at {e['ts']} outside every step range"
m = json.load(open(f"{d}/merged.trace.json"))
ev = [e for e in m["traceEvents"] if e.get("ph") == "X"]
assert {e["pid"] for e in ev} == {0, 1}, "merged: one process per rank"
named = {e["args"]["name"] for e in m["traceEvents"] if e.get("ph") == "M" and e["name"] == "process_name"}
assert any(n.startswith("rank 0") for n in named) and any(n.startswith("rank 1") for n in named), named
by = collections.defaultdict(list)  # (rank, bucket) -> its ranges in time order
for e in ev:
    if e["name"].startswith("all-reduce: "):
        by[(e["pid"], e["name"])].append((e["ts"], e["ts"] + e["dur"]))
worst = None
for (rank, name), ranges in by.items():
    if rank != 0:
        continue
    other = sorted(by[(1, name)])
    for (s0, e0), (s1, e1) in zip(sorted(ranges), other):
        assert e0 >= s1 and e1 >= s0, f"{name}: rank 0 [{s0:.0f}, {e0:.0f}] us, rank 1 [{s1:.0f}, {e1:.0f}] us"
        slack = min(e0 - s1, e1 - s0)
        worst = slack if worst is None else min(worst, slack)
print(f"ok   traces: steps 3-5, {len(phases)} phases, buckets aligned across ranks (least slack {worst:.0f} us)")
PY

# bench step --profile: the same traces, from the benchmark's steps.
"${mpirun_[@]}" "$ft" bench step --config "$work/p.pbtxt" --threads 1 --steps 3 --warmup 1 --profile 2:3 \
  --profile-dir "$work/bench-profile" > "$work/b.log" 2>&1 || { cat "$work/b.log"; echo "FAIL: bench step --profile"; exit 1; }
for r in 0 1; do
  python3 -c "import json,sys; t=json.load(open(sys.argv[1])); n={e['name'] for e in t['traceEvents']}; \
assert {'step 2','step 3','forward','backward'} <= n and 'step 1' not in n, sorted(n)[:20]" \
    "$work/bench-profile/rank-$r.trace.json" || { echo "FAIL: bench step trace of rank $r"; exit 1; }
done
echo "ok   bench step --profile 2:3 wrote both ranks' traces"

set +e
expect "--profile backwards" "--profile: '5:3' needs 1 <= FIRST <= LAST" -- \
  "$ft" train --config "$work/p.pbtxt" --set logging.run_dir="$work/r" --profile 5:3
expect "logging.profile not steps" "logging.profile: 'soon' is not FIRST:LAST" -- \
  "$ft" train --config "$work/p.pbtxt" --set logging.run_dir="$work/r" --set logging.profile=soon
out=$("$ft" doctor --trace "$work" 2>&1); code=$?  # one process, no mpirun
judge "doctor --trace without traces" "no rank-R.trace.json" "$out" "$code" "$out"
exit $fail
