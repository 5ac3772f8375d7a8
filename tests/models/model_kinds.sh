#!/usr/bin/env bash
# A model kind is named in few places: its section of the run config (`model.<kind>` in core/config.proto) is
# read only by its spec entry (models/model_spec.cpp), the model options makers (models/model_options.cpp)
# and its own training recipe (trainer/<kind>_task.cpp). Any other library file that reads a kind's section,
# or switches on the oneof case, is a place a new model would have to touch: this fails on it.
# Usage: bash tests/models/model_kinds.sh [SOURCE_DIR]
set -euo pipefail
src="${1:-$(cd "$(dirname "$0")/../.." && pwd)}"
cd "$src"

kinds=$(sed -n '/^message ModelConfig/,/^}/p' core/config.proto | sed -nE 's/^ *[A-Za-z0-9]+Config ([a-z0-9_]+) = [0-9]+;.*/\1/p')
[[ -n "$kinds" ]] || { echo "FAIL: no model kinds found in core/config.proto's ModelConfig"; exit 1; }
folders=$(sed -nE 's/^([a-z_]+):.*/\1/p' layers.txt)
failures=0
for kind in $kinds; do
  pattern="(has|mutable|clear)_${kind}\(|model\(\)\.${kind}\(\)"
  while IFS= read -r file; do
    case "$file" in
      models/model_spec.cpp | models/model_options.cpp | "trainer/${kind}_task.cpp") ;;
      *) echo "FAIL: $file reads model.$kind (only its spec entry, its options maker and its task may)"
         failures=$((failures + 1)) ;;
    esac
  done < <(grep -rlE "$pattern" $folders --include='*.cpp' --include='*.h' || true)
done
while IFS= read -r hit; do
  echo "FAIL: ${hit%%:*} switches on the model oneof (ask models/model_spec.h instead)"
  failures=$((failures + 1))
done < <(grep -rnE 'ModelConfig::k[A-Z]|kind_case\(\)' $folders --include='*.cpp' --include='*.h' | grep -v '^models/model_spec.cpp:' | grep -v 'KIND_NOT_SET' || true)
if ((failures)); then
  echo "model kinds: $failures place(s) outside the model table name a kind"
  exit 1
fi
echo "model kinds: $(wc -w <<<"$kinds") kinds ($(echo $kinds)); each read only by its spec entry, options maker and task"
