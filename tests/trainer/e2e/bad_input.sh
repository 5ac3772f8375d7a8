#!/usr/bin/env bash
# Bad input to `facetrain train` gives one clear line naming the file/line/field or flag, and exit code 2.
# Usage: bad_input.sh FACETRAIN_BINARY
set -uo pipefail
ft=$1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail=0
expect() {  # expect NAME PATTERN -- command...
  local name=$1 pattern=$2; shift 3
  local out code
  out=$("$@" 2>&1); code=$?
  if [[ $code -ne 2 ]]; then echo "FAIL $name: exit $code, expected 2: $out"; fail=1; return; fi
  if [[ $(printf '%s\n' "$out" | grep -c .) -ne 1 ]]; then echo "FAIL $name: not one line: $out"; fail=1; return; fi
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
expect unknown-command "unknown command" -- "$ft" trian
exit $fail
