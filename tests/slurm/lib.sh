# tests/slurm/lib.sh: shared by the Slurm and fault tests (sourced, not run). Sets BIN (the facetrain binary,
# first argument) and WORK (a fresh directory, removed when the test passes, kept and named when it fails or
# FACETRAIN_TEST_KEEP is set), and provides the tiny store and ViT config, metrics polling, loss comparison.
# shellcheck shell=bash disable=SC2034  # variables here are used by the tests that source this file
set -euo pipefail

BIN=${1:?usage: bash $0 path/to/facetrain}
[ -x "$BIN" ] || { echo "FAIL: $BIN is not an executable"; exit 1; }
TEST_NAME=$(basename "$0" .sh)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/facetrain-$TEST_NAME-XXXXXX")
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
# One thread per rank everywhere, as slurm/train.sbatch sets it for a 1-CPU task: OpenBLAS sizes its own
# thread pool from OMP_NUM_THREADS (not from --threads), and a different pool changes the last float bits.
export OMP_NUM_THREADS=1
# Two ranks on whatever cores are free: ctest may run other tests beside this one.
MPIRUN=(mpirun --oversubscribe --bind-to none -np 2)
PY=/usr/bin/python3; [ -x "$PY" ] || PY=python3  # stdlib json only

CLEANUPS=()  # commands run on exit, last first
on_exit() {
  local rc=$?
  for ((i = ${#CLEANUPS[@]} - 1; i >= 0; i--)); do eval "${CLEANUPS[$i]}" || true; done
  if { [ "$rc" = 0 ] || [ "$rc" = 77 ]; } && [ -z "${FACETRAIN_TEST_KEEP:-}" ]; then
    rm -rf "$WORK"
  else
    echo "($TEST_NAME: files kept in $WORK)"
  fi
}
trap on_exit EXIT

say() { echo "[$TEST_NAME $(date +%H:%M:%S)] $*"; }
# skip / skip_unless_ci: exit 77 (ctest: skipped); Slurm through slurm-local is something CI provides, so its skips
# fail under CI=true (lib/skip.sh).
source "$(dirname "${BASH_SOURCE[0]}")/../lib/skip.sh"
fail() { echo "FAIL ($TEST_NAME): $*"; exit 1; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

# alive PID: the process exists and is not a zombie (PID 1 here may reap orphans late).
alive() { [ -e "/proc/$1/status" ] && ! grep -q '^State:[[:space:]]*Z' "/proc/$1/status" 2>/dev/null; }

# session_alive SID: the live processes of session SID. Runs are started with `setsid` so that a session
# holds mpirun and its ranks (Open MPI gives each rank its own process group, so group kills miss them).
session_alive() { ps -o pid=,stat= -s "$1" | awk '$2 !~ /^Z/ { print $1 }'; }
# kill_session SID: SIGKILL to every process of the session at once.
# shellcheck disable=SC2046  # one pid per word
kill_session() { kill -9 $(ps -o pid= -s "$1") 2>/dev/null || true; }

# make_store PATH: a small procedural face data set (32x32 RGB, 2 classes), made in about a second.
make_store() {
  "$BIN" synth --output "$1" --count 768 --size 32 --seed 11 >/dev/null ||
    fail "facetrain synth could not make $1"
}

# write_config PATH STORE RUN_DIR MAX_STEPS CHECKPOINT_EVERY [extra text]: a tiny ViT whose steps take a
# visible fraction of a second on one thread, so a run can be caught mid-way. Every step is logged.
write_config() {
  cat > "$1" <<EOF
name: "tiny-vit"
model { vit { patch_size: 4 width: 48 depth: 2 heads: 2 mlp_ratio: 2 } }
data { store: "$2" batch_size: 32 val_split: "" seed: 3 }
optimizer { kind: "adamw" lr: 0.001 weight_decay: 0.05 grad_clip_norm: 1.0 }
schedule { max_steps: $4 warmup_steps: 5 decay: "cosine" }
checkpoint { every_steps: $5 keep_last: 3 }
logging { run_dir: "$3" every_steps: 1 progress_seconds: 1 }
${6:-}
EOF
}

# last_step METRICS: the largest "step" in a metrics.jsonl (0 when it does not exist yet). awk, not a JSON
# parser: it runs every 0.1 s while a run trains (a torn last line simply does not match).
last_step() {
  [ -s "$1" ] || { echo 0; return; }
  awk 'match($0, /^\{"step": *[0-9]+/) { v = substr($0, RSTART, RLENGTH); sub(/.*: */, "", v);
       if (v + 0 > m) m = v + 0 } END { print m + 0 }' "$1"
}

# step_time METRICS STEP: seconds between the lines of STEP - 1 and STEP (their "time" fields).
step_time() {
  "$PY" -c 'import json,sys
t={}
for l in open(sys.argv[1]):
    try: r=json.loads(l); t[r["step"]]=r["time"]
    except Exception: pass
s=int(sys.argv[2])
print(max(0.01, t[s]-t[s-1]) if s in t and s-1 in t else 0.1)' "$1" "$2"
}

# wait_for_step METRICS STEP TIMEOUT_S [PID]: until the run logged STEP (fails on timeout or if PID died).
wait_for_step() {
  local end=$((SECONDS + $3))
  while [ "$(last_step "$1")" -lt "$2" ]; do
    [ "$SECONDS" -lt "$end" ] || fail "no step $2 in $1 after $3 s"
    if [ -n "${4:-}" ] && ! kill -0 "$4" 2>/dev/null; then fail "the run ended before step $2 (see above)"; fi
    sleep 0.1
  done
}

# check_losses METRICS REFERENCE STEPS: steps 1..STEPS each appear exactly once in both files and every
# train/loss is equal (the resumed run repeats the uninterrupted one exactly on CPU).
check_losses() {
  "$PY" - "$1" "$2" "$3" <<'EOF' || fail "losses differ from the uninterrupted run (see above)"
import json, sys
def losses(path):
    rows = [json.loads(l) for l in open(path) if l.strip()]
    steps = [r["step"] for r in rows]
    if len(steps) != len(set(steps)):
        dup = sorted({s for s in steps if steps.count(s) > 1})
        sys.exit(f"{path}: steps logged more than once: {dup[:10]}")
    return {r["step"]: r["train/loss"] for r in rows}
got, want, n = losses(sys.argv[1]), losses(sys.argv[2]), int(sys.argv[3])
for name, d in (("run", got), ("reference", want)):
    if sorted(d) != list(range(1, n + 1)):
        sys.exit(f"{name}: steps are not exactly 1..{n}: {sorted(d)[:5]}...{sorted(d)[-5:]}")
bad = [(s, got[s], want[s]) for s in range(1, n + 1) if got[s] != want[s]]
if bad:
    for s, g, w in bad[:10]:
        print(f"step {s}: resumed run {g!r}, uninterrupted run {w!r}")
    sys.exit(f"{len(bad)} of {n} losses differ")
print(f"losses of steps 1..{n} equal the uninterrupted run's")
EOF
}

# run_reference STEPS CHECKPOINT_EVERY: the tiny store ($WORK/tiny.h5) and an uninterrupted reference run of
# STEPS steps under mpirun -np 2, one thread per rank, in $WORK/reference (timed).
run_reference() {
  make_store "$WORK/tiny.h5"
  write_config "$WORK/reference.pbtxt" "$WORK/tiny.h5" "$WORK/reference" "$1" "$2"
  local t0
  t0=$(now)
  "${MPIRUN[@]}" "$BIN" train --config "$WORK/reference.pbtxt" --threads 1 --quiet > "$WORK/reference.log" 2>&1 ||
    { cat "$WORK/reference.log"; fail "the reference run failed"; }
  say "reference run: $1 steps in $(elapsed "$t0") s"
}

# require_local_slurm: skips the test (exit 77, one line; a failure under CI=true) unless ../shared/slurm-local (or
# FACETRAIN_SLURM_LOCAL) is there and we are root; sets LOCAL.
require_local_slurm() {
  local src=${FACETRAIN_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
  LOCAL=${FACETRAIN_SLURM_LOCAL:-$src/../shared/slurm-local}
  [ -f "$LOCAL/start-local-slurm.sh" ] || skip_unless_ci "slurm-local not found at $LOCAL (set FACETRAIN_SLURM_LOCAL)"
  [ "$(id -u)" = 0 ] || skip_unless_ci "slurm-local must run as root"
}

# start_local_slurm CTLD_PORT SLURMD_PORT: a one-node cluster in $WORK/slurm on ports of its own (a
# developer's cluster on the default ports is left alone), stopped on exit, its environment in this shell;
# skips the test where it cannot start.
start_local_slurm() {
  export SLURM_LOCAL_CTLD_PORT=${SLURM_LOCAL_CTLD_PORT:-$1} SLURM_LOCAL_SLURMD_PORT=${SLURM_LOCAL_SLURMD_PORT:-$2}
  chmod 755 "$WORK"  # munged wants every directory above its socket searchable by all (mktemp made it 0700)
  CLEANUPS+=("bash '$LOCAL/stop-local-slurm.sh' '$WORK/slurm' >/dev/null 2>&1")
  local t0 env_lines
  t0=$(now)
  if ! env_lines=$(bash "$LOCAL/start-local-slurm.sh" "$WORK/slurm" 2> "$WORK/slurm-start.log"); then
    tail -n 15 "$WORK/slurm-start.log"
    skip_unless_ci "the local Slurm cluster could not start here (log above)"
  fi
  eval "$env_lines"
  say "slurm-local up in $(elapsed "$t0") s"
}
