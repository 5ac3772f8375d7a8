#!/usr/bin/env bash
# The test command: installs what is missing, builds, and runs every test (unit, MPI on 2 and 3 ranks,
# end-to-end CLI, Slurm and headless-Chromium tests). Usage: bash tools/scripts/test.sh [ctest args]
set -euo pipefail
cd "$(dirname "$0")/../.."
FACETRAIN_TEST_DEPS=1 bash tools/scripts/install-deps.sh
bash tools/scripts/build.sh
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
ctest --test-dir build --output-on-failure --timeout 900 "$@"
