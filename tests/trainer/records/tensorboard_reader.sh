#!/usr/bin/env bash
# TensorBoard's own reader (the `tensorboard` package: test-only, in .venv-test, made by install-deps.sh with
# FACETRAIN_TEST_DEPS=1) reads the event file of a short training run: every scalar that metrics.jsonl holds is
# there under the same tag and step with the same value (float32), and the file passes its record checks.
# The independent hand decoder is trainer_records_event_writer. Usage: tensorboard_reader.sh FACETRAIN SOURCE_DIR
set -euo pipefail
ft=$1
source "$2/tests/lib/tensorboard_python.sh" "$2"  # sets py
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$ft" synth --output "$work/s.h5" --count 240 --size 16 --quiet
cat > "$work/c.pbtxt" <<EOF
model { vit { patch_size: 4 width: 16 depth: 1 heads: 2 } }
data { store: "$work/s.h5" batch_size: 16 }
schedule { max_steps: 6 }
logging { run_dir: "$work/run" every_steps: 1 }
EOF
"$ft" train --config "$work/c.pbtxt" --threads 1 --quiet > "$work/train.log" 2>&1 || { cat "$work/train.log"; exit 1; }
"$py" - "$work/run" "$2/tests/lib" <<'EOF'
import glob, json, math, sys
sys.path.insert(0, sys.argv[2])
from tensorboard_scalars import scalars

run = sys.argv[1]
seen = {(tag, step): value for step, tags in scalars(run).items() for tag, value in tags.items()}
expected = {}
with open(run + "/metrics.jsonl") as f:
    for line in f:
        row = json.loads(line)
        for tag, v in row.items():
            if tag not in ("step", "time"):
                expected[(tag, row["step"])] = v
assert expected, "metrics.jsonl is empty"
missing = [k for k in expected if k not in seen]
assert not missing, f"not in the event file: {missing[:5]}"
for key, want in expected.items():
    got = seen[key]
    assert math.isclose(got, want, rel_tol=1e-6, abs_tol=1e-6), f"{key}: event file {got}, metrics.jsonl {want}"
steps = sorted({s for (t, s) in expected if t == "train/loss"})
assert steps == list(range(1, 7)), steps
print(f"TensorBoard's reader: {len(expected)} scalars of metrics.jsonl found with equal values ({len(seen)} in the file)")
EOF
