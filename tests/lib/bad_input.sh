# Shared by the bad-input tests: `expect NAME PATTERN -- command...` runs a facetrain command that must fail
# on bad input with ONE "error:" line matching PATTERN, exit code 2 and no directory $work/r left behind.
# With ranks > 1 it runs under mpirun: the ranks agree on the error, so it is still one line of facetrain's
# (mpirun adds its own notice that processes exited non-zero) and the job is not aborted.
# Source it as `source .../bad_input.sh "$@"` from a script called as SCRIPT FACETRAIN_BINARY [RANKS]: it sets
# ft (the binary), ranks (1 = no mpirun), work (a scratch directory, removed on exit) and fail=0.
set -uo pipefail
ft=$1
ranks=${2:-1}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail=0

# The verdict on one failed command: exit 2, one "error:" line matching the pattern, no run directory.
judge() {
  local name=$1 pattern=$2 out=$3 code=$4 lines=$5
  if [[ $code -ne 2 ]]; then echo "FAIL $name: exit $code, expected 2: $out"; fail=1; return; fi
  if [[ $(printf '%s\n' "$lines" | grep -c .) -ne 1 ]]; then echo "FAIL $name: not one line: $out"; fail=1; return; fi
  if [[ -e $work/r ]]; then echo "FAIL $name: left a run directory behind"; fail=1; return; fi
  if ! grep -qE -- "$pattern" <<<"$lines"; then echo "FAIL $name: '$lines' does not match /$pattern/"; fail=1; return; fi
  echo "ok   $name: $lines"
}

# Under mpirun: facetrain's error lines only (mpirun adds its own notice); an aborted job is a failure.
run_ranks() {  # run_ranks mpirun-args... ; sets out, code, lines
  out=$(mpirun --allow-run-as-root --oversubscribe --bind-to none "$@" 2>&1); code=$?
  lines=$(printf '%s\n' "$out" | grep -E '(^|\] )error: ' || true)
  if grep -q "MPI_ABORT" <<<"$out"; then code=aborted; fi
}

expect() {
  local name=$1 pattern=$2; shift 3
  local out code lines
  if [[ $ranks -gt 1 ]]; then
    run_ranks -np "$ranks" "$@"
    if [[ $code == aborted ]]; then echo "FAIL $name: the job was aborted: $out"; fail=1; return; fi
  else
    out=$("$@" 2>&1); code=$?
    lines=$out
  fi
  judge "$name" "$pattern" "$out" "$code" "$lines"
}

# `expect_last_rank NAME PATTERN 'ARGS' -- command...`: a failure on ONE rank only (a file missing on one
# node): with ranks > 1 the last rank alone also gets ARGS (word-split; mpirun's MPMD form), the others
# run the command as is. Still one line, from the failing rank, every rank exits 2, nothing aborted.
# Skipped with one rank (it is then the same as expect).
expect_last_rank() {
  local name=$1 pattern=$2 extra=$3; shift 4
  local out code lines
  [[ $ranks -gt 1 ]] || return 0
  # shellcheck disable=SC2086  # ARGS is word-split on purpose
  run_ranks -np $((ranks - 1)) "$@" : -np 1 "$@" $extra
  if [[ $code == aborted ]]; then echo "FAIL $name: the job was aborted: $out"; fail=1; return; fi
  judge "$name" "$pattern" "$out" "$code" "$lines"
}
