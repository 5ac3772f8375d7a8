#!/usr/bin/env bash
# Configures and builds facetrain (Release, Ninja, ccache, precompiled torch headers) into build/, or into
# FACETRAIN_BUILD_DIR. Usage: bash tools/scripts/build.sh [ninja targets...]   (default: everything)
#   e.g. bash tools/scripts/build.sh facetrain     (the binary only, as tools/scripts/main-job.sh does)
set -euo pipefail
cd "$(dirname "$0")/../.."
export CCACHE_SLOPPINESS=pch_defines,time_macros,include_file_mtime,include_file_ctime
export CCACHE_DIR="${CCACHE_DIR:-$HOME/.cache/ccache}"
# Paths relative to the tree: build folders of one checkout share cache hits.
export CCACHE_BASEDIR="${CCACHE_BASEDIR:-$PWD}"
build_dir="${FACETRAIN_BUILD_DIR:-build}"
jobs="${FACETRAIN_BUILD_JOBS:-$(nproc)}"
cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build_dir" -j "$jobs" ${1:+--target "$@"}
