#!/usr/bin/env bash
# tests/lib/gtest_run.sh COMMAND...: runs a GoogleTest binary (or mpirun of one) for ctest, so that GTEST_SKIP
# is visible there. A run that failed keeps its exit code (a failure is never reported as a skip); a run that
# passed with any case skipped exits 77, which facetrain_add_test sets as the test's SKIP_RETURN_CODE (ctest:
# "Skipped"), after one line naming the skipped cases. Under mpirun, rank 0 prints the results
# (tests/lib/mpi_test_main.cpp).
set -uo pipefail
log=$(mktemp)
trap 'rm -f "$log"' EXIT
# mpirun gives its ranks a pseudo-terminal, and gtest then colours its output: plain text is matched below.
export GTEST_COLOR=no
"$@" 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
((rc == 0)) || exit "$rc"
# gtest's summary: "[  SKIPPED ] 2 tests, listed below:" then "[  SKIPPED ] Suite.Case" per case (colour codes
# stripped in case a caller forced them on).
sed -i 's/\x1b\[[0-9;]*m//g' "$log"
skipped=$(sed -n 's/^\[  SKIPPED \] \([A-Za-z0-9_/.]*\)$/\1/p' "$log" | paste -sd ' ')
if [[ -n "$skipped" ]] || grep -q '^\[  SKIPPED \]' "$log"; then
  echo "gtest_run: passed with skipped cases: ${skipped:-see above} -> reported as skipped (exit 77)"
  exit 77
fi
exit 0
