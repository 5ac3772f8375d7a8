#!/usr/bin/env bash
# The layout holds: every #include "folder/..." between top-level folders follows layers.txt
# (a folder uses only the folders it names there; launcher/ is the binary and may use all), the eval
# library does not link the training loop, and the README's layout section names every library folder.
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

# eval must not link the training loop (its CMake target lists no trainer library).
if grep -A4 'target_link_libraries(facetrain_eval' eval/CMakeLists.txt | grep -q 'facetrain_trainer\|facetrain_records'; then
  echo "FAIL: facetrain_eval links the training loop"; failures=$((failures + 1))
fi

if ((failures)); then
  echo "layout: $failures problem(s)"
  exit 1
fi
echo "layout: the include graph follows layers.txt (${order[*]}); eval links no trainer library"
