#!/usr/bin/env bash
# The tree follows .clang-format: every C++ file git tracks (or, outside a checkout, every one under the source
# folders) formats to itself with Debian 12's clang-format 14. Fix with:
#   git ls-files '*.cpp' '*.h' | xargs clang-format -i
# Usage: format_test.sh SOURCE_DIR
set -uo pipefail
src=$1
source "$(dirname "$0")/lib/skip.sh"
command -v clang-format > /dev/null || skip_unless_ci "no clang-format (tools/scripts/install-deps.sh installs it with FACETRAIN_TEST_DEPS=1)"
cd "$src" || exit 1
if git rev-parse --is-inside-work-tree > /dev/null 2>&1; then
  mapfile -t files < <(git ls-files '*.cpp' '*.h')
else
  mapfile -t files < <(find core comm runtime datastore tools models eval trainer bench slurm launcher tests \
                         -name '*.cpp' -o -name '*.h')
fi
((${#files[@]} > 0)) || { echo "FAIL: no C++ files found under $src"; exit 1; }
bad=()
for f in "${files[@]}"; do
  clang-format --dry-run --Werror "$f" > /dev/null 2>&1 || bad+=("$f")
done
if ((${#bad[@]})); then
  echo "FAIL: ${#bad[@]} of ${#files[@]} files do not follow .clang-format, e.g.:"
  printf '  %s\n' "${bad[@]:0:10}"
  clang-format "${bad[0]}" | diff "${bad[0]}" - | head -20
  exit 1
fi
echo "ok   ${#files[@]} C++ files follow .clang-format ($(clang-format --version | grep -o 'version [0-9.]*'))"
