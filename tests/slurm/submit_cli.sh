#!/usr/bin/env bash
# tests/slurm/submit_cli.sh FACETRAIN: `facetrain submit` from the outside: each bad flag or config is one
# line on stderr naming it with exit 2; a good call prints the rendered slurm/train.sbatch (valid bash, the
# requested resources, absolute paths); --submit hands the script to sbatch (a stand-in on PATH here).
source "$(dirname "$0")/lib.sh"

SRC=${FACETRAIN_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
cd "$WORK" || exit 1
: > "$WORK/tiny.h5"  # submit checks only that the store exists
write_config "$WORK/tiny.pbtxt" "tiny.h5" "runs/tiny" 40 5
printf 'model { vit { } }\nbogus_field: 1\n' > "$WORK/bad.pbtxt"

# expect_error "TEXT" ARGS...: exit 2 and exactly one stderr line that contains TEXT.
expect_error() {
  local want=$1 rc=0
  shift
  "$BIN" submit "$@" > "$WORK/out" 2> "$WORK/err" || rc=$?
  [ "$rc" = 2 ] || { cat "$WORK/err"; fail "submit $*: exit $rc, expected 2"; }
  [ "$(wc -l < "$WORK/err")" = 1 ] || { cat "$WORK/err"; fail "submit $*: expected one error line"; }
  grep -qF -- "$want" "$WORK/err" || { cat "$WORK/err"; fail "submit $*: the error does not say '$want'"; }
}
ok=(--config tiny.pbtxt --cpu --tasks-per-node 2)
expect_error "--config is required" --cpu --tasks-per-node 2
expect_error "--config nope.pbtxt: no such file" --config nope.pbtxt --gpus-per-node 4
expect_error "bad.pbtxt" --config bad.pbtxt --gpus-per-node 4
expect_error "--set" --config tiny.pbtxt --gpus-per-node 4 --set no.such.field=1
expect_error "--gpus-per-node G is required" --config tiny.pbtxt
expect_error "--gpus-per-node: not with --cpu" --config tiny.pbtxt --cpu --gpus-per-node 2
expect_error "--tasks-per-node R is required with --cpu" --config tiny.pbtxt --cpu
expect_error "--tasks-per-node: only with --cpu" --config tiny.pbtxt --gpus-per-node 4 --tasks-per-node 4
expect_error "--gpus-per-node 0: must be >= 1" --config tiny.pbtxt --gpus-per-node 0
expect_error "--nodes 0: must be >= 1" "${ok[@]}" --nodes 0
expect_error "--cpus-per-task 0: must be >= 1" "${ok[@]}" --cpus-per-task 0
expect_error "--time 2h:" "${ok[@]}" --time 2h
expect_error "--time 1:75:00:" "${ok[@]}" --time 1:75:00
expect_error "--array 3-0: range 3-0 ends before it starts" "${ok[@]}" --array 3-0
expect_error "--partition 'a b'" "${ok[@]}" --partition "a b"
expect_error "--account 'x;y'" "${ok[@]}" --account "x;y"
expect_error "--launcher foo: expected srun or mpirun" "${ok[@]}" --launcher foo
expect_error "--nodes two: expected a whole number" "${ok[@]}" --nodes two
expect_error "unexpected argument 'extra'" "${ok[@]}" extra

# A good call: the script on stdout, nothing else.
"$BIN" submit --config tiny.pbtxt --gpus-per-node 4 --nodes 2 --cpus-per-task 6 --time 1-00:00:00 \
  --partition gpu --account proj --array 0-3%2 --set optimizer.lr=3e-4 > script.sbatch 2> err ||
  { cat err; fail "a valid submit call failed"; }
bash -n script.sbatch || fail "the rendered script is not valid bash"
for line in "#SBATCH --job-name=tiny-vit" "#SBATCH --nodes=2" "#SBATCH --ntasks-per-node=4" \
            "#SBATCH --gpus-per-node=4" "#SBATCH --cpus-per-task=6" "#SBATCH --time=1-00:00:00" \
            "#SBATCH --partition=gpu" "#SBATCH --account=proj" "#SBATCH --array=0-3%2" \
            "#SBATCH --output=%x-%A_%a.out" "#SBATCH --signal=B:USR1@120" "#SBATCH --requeue" \
            "CONFIG=$WORK/tiny.pbtxt  #" "FACETRAIN=$(readlink -f "$BIN")  #" "RUN_DIR=$WORK/runs/tiny  #" \
            "SETS=(optimizer.lr=3e-4)  #"; do
  grep -qF -- "$line" script.sbatch || { cat script.sbatch; fail "the rendered script lacks: $line"; }
done
# Apart from the header and the knobs, it is slurm/train.sbatch itself.
diff <(sed -n '/^set -uo pipefail/,$p' "$SRC/slurm/train.sbatch") <(sed -n '/^set -uo pipefail/,$p' script.sbatch) ||
  fail "the rendered body differs from slurm/train.sbatch"

# The CPU variant asks for no GPU.
"$BIN" submit "${ok[@]}" --output-script cpu.sbatch 2> err || { cat err; fail "--output-script failed"; }
[ -x cpu.sbatch ] || fail "--output-script did not write an executable cpu.sbatch"
! grep -q -- "--gpus" cpu.sbatch || fail "the --cpu script requests GPUs"
grep -qx "#SBATCH --ntasks-per-node=2" cpu.sbatch || fail "the --cpu script does not ask for 2 tasks per node"
grep -qx "#SBATCH --cpus-per-task=1" cpu.sbatch || fail "--cpu should default to 1 CPU per task"

# --submit: sbatch gets the rendered script; its id is printed the way sbatch prints it.
mkdir -p fakebin
cat > fakebin/sbatch <<EOF
#!/bin/bash
[ "\$1" = --parsable ] || exit 9
cp "\$2" "$WORK/submitted.sbatch"
echo "4242;local"
EOF
chmod +x fakebin/sbatch
PATH="$WORK/fakebin:$PATH" "$BIN" submit "${ok[@]}" --submit > submit.out 2> err || { cat err; fail "--submit failed"; }
[ "$(tail -n 1 submit.out)" = "Submitted batch job 4242" ] || { cat submit.out; fail "no job id line"; }
# (line 2 records the command line, which differs)
cmp -s <(sed 2d cpu.sbatch) <(sed 2d submitted.sbatch) || fail "sbatch did not get the rendered script"
# sbatch's own refusal, and no sbatch at all: exit 2 with a line that says so (after the shell's/sbatch's own).
printf '#!/bin/bash\necho "sbatch: error: Batch job submission failed: Invalid account" >&2\nexit 1\n' > fakebin/sbatch
rc=0
PATH="$WORK/fakebin:$PATH" "$BIN" submit "${ok[@]}" --submit > /dev/null 2> err || rc=$?
{ [ "$rc" = 2 ] && grep -q "sbatch refused the script (exit 1" err; } || { cat err; fail "a refused submission: exit $rc"; }
mkdir -p emptybin
rc=0
PATH="$WORK/emptybin" "$BIN" submit "${ok[@]}" --submit > /dev/null 2> err || rc=$?
{ [ "$rc" = 2 ] && grep -q "sbatch not found on PATH" err; } || { cat err; fail "no sbatch on PATH: exit $rc"; }
say "PASS"
