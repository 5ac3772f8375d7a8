#!/usr/bin/env bash
# End-to-end: the perf/* scalars of a 2-rank run, read with TensorBoard's own reader (the test-only
# `tensorboard` package in .venv-test, as tests/trainer/records/tensorboard_reader.sh): every log interval
# holds model TFLOP/s, MFU against the given logging.peak_tflops (perf/mfu = perf/tflops / peak), the step's
# time budget by phase (fractions that sum to 1), the host peak and, through the GPU memory seam
# (FACETRAIN_TEST_GPU_MEMORY), the GPU allocator's peaks; metrics.jsonl holds the same. The run log names the
# peak and the summary the perf and memory lines; `bench step` prints the same names, with MFU against the
# matmul measured at start-up. Usage: perf.sh FACETRAIN_BINARY SOURCE_DIR
set -euo pipefail
ft=$1
source "$2/tests/lib/tensorboard_python.sh" "$2"  # sets py
work=$(mktemp -d); echo "work dir $work"
trap '[[ -n "${KEEP:-}" ]] || rm -rf "$work"' EXIT
source "$2/tests/lib/run_config.sh"

"$ft" synth --output "$work/s.h5" --count 240 --size 16 --quiet
vit_config "$work/c.pbtxt" vit16 "$work/s.h5" 8 "" 'schedule { max_steps: 6 }' \
  "logging { run_dir: \"$work/run\" every_steps: 2 peak_tflops: 0.5 }"
export FACETRAIN_TEST_GPU_MEMORY=1000,1500,2,81920  # allocated MB, reserved MB, retries, total MB
mpirun --allow-run-as-root --oversubscribe --bind-to none -np 2 "$ft" train --config "$work/c.pbtxt" --threads 1 \
  --quiet > "$work/train.log" 2>&1 || { cat "$work/train.log"; echo "FAIL: training failed"; exit 1; }
for line in 'perf: [0-9.]+ MFLOP of model FLOPs per image and training step; MFU \(perf/mfu\) against 0\.5000 TFLOP/s \(logging\.peak_tflops\)' \
            'summary: perf on rank 0: [0-9.]+ TFLOP/s \([0-9.]+ MFLOP per image\), MFU [0-9.]+% of 0\.5000 TFLOP/s .*; step [0-9.]+ ms: data_wait [0-9.]+%, copy [0-9.]+%, compute [0-9.]+%, communication [0-9.]+%, optimizer [0-9.]+%, other [0-9.]+%; host peak [0-9]+ MB; GPU peak 0\.98 GB allocated, 1\.46 GB reserved of 80\.00 GB, 2 allocator retries' \
            'summary: [0-9]+ steps in .*; per step on rank 0: data_wait [0-9.]+ ms, copy [0-9.]+ ms, compute [0-9.]+ ms' \
            'summary: peak memory: host [0-9]+ MB on rank 0, [0-9]+ MB at most \(rank [01]\), [0-9]+ MB mean over ranks; GPU peak' \
            'summary: the perf/\* statistics took [0-9.]+ us per log interval'; do
  grep -qE "$line" "$work/train.log" || { cat "$work/train.log"; echo "FAIL: no line matching: $line"; exit 1; }
done

"$ft" bench step --config "$work/c.pbtxt" --steps 4 --warmup 1 --threads 1 > "$work/bench.log" 2>&1 ||
  { cat "$work/bench.log"; echo "FAIL: bench step failed"; exit 1; }
grep -qE 'perf on rank 0: .*MFU [0-9.]+% of 0\.5000 TFLOP/s \(logging\.peak_tflops\)' "$work/bench.log" ||
  { cat "$work/bench.log"; echo "FAIL: bench step has no perf line"; exit 1; }
"$ft" bench step --config "$work/c.pbtxt" --set logging.peak_tflops=0 --steps 2 --warmup 0 --threads 1 \
  > "$work/bench0.log" 2>&1 || { cat "$work/bench0.log"; echo "FAIL: bench step failed"; exit 1; }
grep -qE 'MFU [0-9.]+% of [0-9.]+ TFLOP/s \(fp32 matmul 256\^3 on 1 thread at start-up\)' "$work/bench0.log" ||
  { cat "$work/bench0.log"; echo "FAIL: bench step does not measure MFU against the start-up matmul"; exit 1; }

"$py" - "$work/run" "$(grep '^bench_step ' "$work/bench.log")" "$2/tests/lib" <<'EOF'
import glob, json, math, sys
sys.path.insert(0, sys.argv[3])
from tensorboard_scalars import scalars

run, bench = sys.argv[1], sys.argv[2]
seen = scalars(run)
phases = ["data_wait", "copy", "compute", "communication", "optimizer", "other"]
names = ["tflops", "mfu", "step_seconds"] + phases + ["host_peak_mb", "gpu_peak_allocated_mb",
                                                      "gpu_peak_reserved_mb", "gpu_alloc_retries"]
assert sorted(s for s, tags in seen.items() if any(t.startswith("perf/") for t in tags)) == [2, 4, 6], seen.keys()
jsonl = {row["step"]: row for row in map(json.loads, open(run + "/metrics.jsonl"))}
for step in (2, 4, 6):
    perf = {t[len("perf/"):]: v for t, v in seen[step].items() if t.startswith("perf/")}
    assert sorted(perf) == sorted(names), (step, sorted(perf))
    assert perf["tflops"] > 0 and perf["step_seconds"] > 0, perf
    assert math.isclose(perf["mfu"], perf["tflops"] / 0.5, rel_tol=1e-5), perf
    assert all(0 <= perf[p] <= 1 for p in phases), perf
    assert math.isclose(sum(perf[p] for p in phases), 1.0, abs_tol=1e-5), perf
    assert perf["compute"] > 0, perf  # its share depends on the load: a busy peer shows as communication
    assert perf["host_peak_mb"] > 10, perf
    assert (perf["gpu_peak_allocated_mb"], perf["gpu_peak_reserved_mb"], perf["gpu_alloc_retries"]) == (1000, 1500, 2)
    for name, value in perf.items():
        assert math.isclose(jsonl[step]["perf/" + name], value, rel_tol=1e-6, abs_tol=1e-6), (step, name)
keys = dict(kv.split("=", 1) for kv in bench.split()[1:])
missing = [n for n in names if n not in keys]
assert not missing, f"bench step's key=value line lacks {missing}: {bench}"
assert math.isclose(float(keys["mfu"]), float(keys["tflops"]) / 0.5, rel_tol=1e-4), bench
print(f"TensorBoard's reader: perf/* at steps 2, 4, 6 ({len(names)} each); bench step prints the same names")
EOF
echo "PASS: perf/* scalars in TensorBoard and metrics.jsonl, the summary's perf and memory lines, bench step's names"
