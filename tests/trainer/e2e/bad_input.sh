#!/usr/bin/env bash
# Bad input to `facetrain train` gives one clear line naming the file/line/field or flag, exit code 2, and
# no run directory. With RANKS > 1 every case runs under mpirun: the ranks agree on the error, so it is
# still ONE line of facetrain's (mpirun adds its own notice that processes exited non-zero) and no abort.
# Usage: bad_input.sh FACETRAIN_BINARY [RANKS]
set -uo pipefail
ft=$1
ranks=${2:-1}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail=0
expect() {  # expect NAME PATTERN -- command...
  local name=$1 pattern=$2; shift 3
  local out code lines
  if [[ $ranks -gt 1 ]]; then
    out=$(mpirun --allow-run-as-root --oversubscribe --bind-to none -np "$ranks" "$@" 2>&1); code=$?
    lines=$(printf '%s\n' "$out" | grep -E '(^|\] )error: ' || true)
    if grep -q "MPI_ABORT" <<<"$out"; then echo "FAIL $name: the job was aborted: $out"; fail=1; return; fi
  else
    out=$("$@" 2>&1); code=$?
    lines=$out
  fi
  if [[ $code -ne 2 ]]; then echo "FAIL $name: exit $code, expected 2: $out"; fail=1; return; fi
  if [[ $(printf '%s\n' "$lines" | grep -c .) -ne 1 ]]; then echo "FAIL $name: not one line: $out"; fail=1; return; fi
  if [[ -e $work/r ]]; then echo "FAIL $name: left a run directory behind"; fail=1; return; fi
  out=$lines
  if ! grep -qE -- "$pattern" <<<"$out"; then echo "FAIL $name: '$out' does not match /$pattern/"; fail=1; return; fi
  echo "ok   $name: $out"
}
printf 'model { vit { width: 64 } }\ndata { stor: "x.h5" }\n' > "$work/unknown.pbtxt"
printf 'model { vit { width: "wide" } }\n' > "$work/value.pbtxt"
printf 'model { vit { width: 64 heads: 5 } }\ndata { store: "%s/none.h5" }\nlogging { run_dir: "%s/r" }\n' "$work" "$work" > "$work/heads.pbtxt"
printf 'model { vit { } }\ndata { store: "%s/none.h5" }\nlogging { run_dir: "%s/r" }\n' "$work" "$work" > "$work/nostore.pbtxt"
expect unknown-field "unknown.pbtxt:2:.*stor" -- "$ft" train --config "$work/unknown.pbtxt"
expect bad-value "value.pbtxt:1:.*width" -- "$ft" train --config "$work/value.pbtxt"
expect missing-file "nothere.pbtxt" -- "$ft" train --config "$work/nothere.pbtxt"
expect validation "model.vit.width.*model.vit.heads" -- "$ft" train --config "$work/heads.pbtxt"
expect bad-override "--set optimizer.lrr=1.*lrr" -- "$ft" train --config "$work/heads.pbtxt" --set optimizer.lrr=1
expect missing-store "none.h5" -- "$ft" train --config "$work/nostore.pbtxt"
expect unknown-flag "--bogus|bogus" -- "$ft" train --bogus
# Before MPI starts there is no rank to speak for the others: single process only.
[[ $ranks -eq 1 ]] && expect unknown-command "unknown command" -- "$ft" trian
exit $fail
