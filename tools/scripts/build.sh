#!/usr/bin/env bash
# Configures and builds facetrain into build/ (Release, Ninja, ccache, precompiled torch headers).
set -euo pipefail
cd "$(dirname "$0")/../.."
export CCACHE_SLOPPINESS=pch_defines,time_macros,include_file_mtime,include_file_ctime
export CCACHE_DIR="${CCACHE_DIR:-$HOME/.cache/ccache}"
# Paths relative to the tree: build folders of one checkout share cache hits.
export CCACHE_BASEDIR="${CCACHE_BASEDIR:-$PWD}"
jobs="${FACETRAIN_BUILD_JOBS:-$(nproc)}"
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j "$jobs"
