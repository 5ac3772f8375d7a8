#!/usr/bin/env bash
# Configures and builds facetrain (Release, Ninja, ccache, precompiled torch headers) into build/, or into
# FACETRAIN_BUILD_DIR. Usage: bash tools/scripts/build.sh [ninja targets...]   (default: everything)
#   e.g. bash tools/scripts/build.sh facetrain     (the binary only, as tools/scripts/main-job.sh does)
set -euo pipefail
cd "$(dirname "$0")/../.."
source tools/scripts/lib/ccache-env.sh
build_dir="${FACETRAIN_BUILD_DIR:-build}"
jobs="${FACETRAIN_BUILD_JOBS:-$(nproc)}"
cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build_dir" -j "$jobs" ${1:+--target "$@"}
