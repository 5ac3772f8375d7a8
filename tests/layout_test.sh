#!/usr/bin/env bash
# The layout holds: every #include "folder/..." between top-level folders follows layers.txt
# (a folder uses only the folders it names there; launcher/ is the binary and may use all), the eval
# library does not link the training loop, no library names a command-line flag, and the README's layout
# section names every library folder.
# Usage: bash tests/layout_test.sh [SOURCE_DIR]
set -euo pipefail
src="${1:-$(cd "$(dirname "$0")/.." && pwd)}"
cd "$src"

# folder: the folders it may include (besides itself), from layers.txt, the one list of the layers.
declare -A allowed=()
order=()
while IFS= read -r line; do
  [[ "$line" =~ ^([a-z_]+):(.*)$ ]] || continue
  folder="${BASH_REMATCH[1]}"
  deps="$(echo ${BASH_REMATCH[2]})"
  order+=("$folder")
  if [[ "$deps" == "*" ]]; then
    allowed[$folder]="${order[*]}"
  else
    allowed[$folder]="$deps"
  fi
done < layers.txt
# launcher/ (the binary) may include every layer, including those listed after it.
for folder in "${!allowed[@]}"; do
  [[ "$(grep -E "^$folder:" layers.txt)" == *"*"* ]] && allowed[$folder]="${order[*]}"
done
(( ${#order[@]} > 0 )) || { echo "FAIL: layers.txt lists no layers"; exit 1; }
# Each layer may only name layers before it (the order is also the CMake order).
for i in "${!order[@]}"; do
  for dep in ${allowed[${order[$i]}]}; do
    [[ " ${order[*]:0:$i} " == *" $dep "* || "$(grep -E "^${order[$i]}:" layers.txt)" == *"*"* ]] ||
      { echo "FAIL: layers.txt: ${order[$i]} uses $dep, which is not listed before it"; exit 1; }
  done
done

failures=0
for folder in "${!allowed[@]}"; do
  [[ -d "$folder" ]] || { echo "FAIL: $folder/ is in the include order but not in the tree"; failures=$((failures + 1)); continue; }
  while IFS= read -r hit; do
    file="${hit%%:*}"
    target="$(sed -E 's/.*#include "([a-z_]+)\/.*/\1/' <<<"$hit")"
    [[ "$target" == "$folder" ]] && continue
    [[ -d "$target" ]] || continue  # e.g. a generated header under the build dir named like a folder
    if [[ " ${allowed[$folder]} " != *" $target "* ]]; then
      echo "FAIL: $file includes $target/ (${folder}/ may include: ${allowed[$folder]:-nothing})"
      failures=$((failures + 1))
    fi
  done < <(grep -rHE '^#include "[a-z_]+/' "$folder" --include='*.h' --include='*.cpp' --include='*.cc' || true)
done

# Every folder with a CMakeLists.txt (a library or the binary) is in the include order.
for dir in */; do
  dir="${dir%/}"
  [[ -f "$dir/CMakeLists.txt" && "$dir" != tests && "$dir" != build* ]] || continue
  [[ -n "${allowed[$dir]+set}" ]] || { echo "FAIL: $dir/ has a CMakeLists.txt but no place in layers.txt"; failures=$((failures + 1)); }
  grep -q "\`$dir/\`" README.md || { echo "FAIL: README.md's layout does not name $dir/"; failures=$((failures + 1)); }
done

# The trainer links only eval's metrics library (per-epoch validation, sample grids), never the eval commands'
# libraries (GIF, MP4, HTML report), and includes only that library's headers.
if grep -A3 'target_link_libraries(facetrain_trainer' trainer/CMakeLists.txt | grep -qE 'facetrain_eval( |$|\))'; then
  echo "FAIL: facetrain_trainer links facetrain_eval (it may link facetrain_eval_metrics only)"; failures=$((failures + 1))
fi
metrics_sources="$(sed -n '/add_library(facetrain_eval_metrics/,/)/p' eval/CMakeLists.txt)"
while IFS= read -r hit; do
  header="$(sed -E 's/.*#include "eval\/([a-z_]+)\.h".*/\1/' <<<"$hit")"
  [[ "$metrics_sources" == *"$header.cpp"* ]] ||
    { echo "FAIL: ${hit%%:*} includes eval/$header.h, which is not in facetrain_eval_metrics"; failures=$((failures + 1)); }
done < <(grep -rHE '^#include "eval/' trainer --include='*.h' --include='*.cpp' || true)

# Libraries name config fields and files; only the launcher (the binary, "*" in layers.txt) turns them into
# command-line flags: no string literal in a library folder starts with "--<letter> (comment lines aside).
flag_literals() {  # flag_literals FOLDER...: "file:line:text" of each such literal
  { grep -rnHE '"--[A-Za-z]' "$@" --include='*.h' --include='*.cpp' --include='*.cc' || true; } |
    grep -vE '^[^:]+:[0-9]+:[[:space:]]*//' || true
}
libraries=()
for folder in "${order[@]}"; do
  [[ "$(grep -E "^$folder:" layers.txt)" == *"*"* || ! -d "$folder" ]] || libraries+=("$folder")
done
while IFS= read -r hit; do
  [[ -n "$hit" ]] || continue
  echo "FAIL: $(cut -d: -f1,2 <<<"$hit"): a library names the flag $(grep -oE '"--[A-Za-z][A-Za-z0-9-]*' <<<"$hit" |
       head -1)\" (name the field or file, take the name from the caller, or check the value in launcher/commands/)"
  failures=$((failures + 1))
done < <(flag_literals "${libraries[@]}")
# The scan itself finds a planted literal and passes over a comment.
planted="$(mktemp -d)"
printf '// "--alpha" in a comment\nthrow UserError("--alpha must be in [0, 1]");\n' > "$planted/x.cpp"
[[ "$(flag_literals "$planted" | wc -l)" -eq 1 ]] ||
  { echo "FAIL: the flag-literal scan misses a planted \"--alpha\" literal"; failures=$((failures + 1)); }
rm -rf "$planted"

# eval must not link the training loop (its CMake target lists no trainer library).
if grep -A4 'target_link_libraries(facetrain_eval' eval/CMakeLists.txt | grep -q 'facetrain_trainer\|facetrain_records'; then
  echo "FAIL: facetrain_eval links the training loop"; failures=$((failures + 1))
fi

if ((failures)); then
  echo "layout: $failures problem(s)"
  exit 1
fi
echo "layout: the include graph follows layers.txt (${order[*]}); eval links no trainer library; no library" \
     "names a flag"
