#!/usr/bin/env bash
# Builds facetrain against a current CUDA LibTorch 2.x into build-torch2/ (Release, Ninja, ccache), beside the
# default build/ against Debian's LibTorch 1.13. Where the LibTorch comes from:
#   FACETRAIN_LIBTORCH=/path/to/libtorch   a LibTorch you have (pytorch.org's archive, or a torch/ folder of a
#                                          wheel): used as is, nothing is installed
#   otherwise                              the torch wheel from PyPI (FACETRAIN_TORCH_VERSION, default below)
#                                          into the project-local environment .venv-torch/, whose torch/
#                                          folder is a complete LibTorch with CUDA, cuDNN and NCCL beside it
# The CUDA toolkit's headers come from /usr/local/cuda (or CUDA_HOME); the run-time CUDA and NCCL libraries
# are the ones LibTorch itself loads (CMakeLists.txt). No GPU is needed to build: without one the binary
# trains on CPU and says so.
# Usage: bash tools/scripts/build-libtorch2.sh [ninja targets...]     (default: everything)
set -euo pipefail
cd "$(dirname "$0")/../.."
export CCACHE_SLOPPINESS=pch_defines,time_macros,include_file_mtime,include_file_ctime
export CCACHE_DIR="${CCACHE_DIR:-$HOME/.cache/ccache}"
version="${FACETRAIN_TORCH_VERSION:-2.15.0}"
build_dir="${FACETRAIN_TORCH2_BUILD_DIR:-build-torch2}"

if [[ -n "${FACETRAIN_LIBTORCH:-}" ]]; then
  libtorch="$FACETRAIN_LIBTORCH"
  [[ -f "$libtorch/share/cmake/Torch/TorchConfig.cmake" ]] ||
    { echo "build-libtorch2: FACETRAIN_LIBTORCH=$libtorch has no share/cmake/Torch/TorchConfig.cmake" >&2; exit 2; }
else
  venv="$PWD/.venv-torch"
  # The spec finds torch/ without importing it (an import takes seconds and wants NumPy).
  find_torch='import importlib.util, os; s = importlib.util.find_spec("torch"); print(os.path.dirname(s.origin) if s else "")'
  installed="$("$venv/bin/python" -c 'import importlib.metadata as m; print(m.version("torch"))' 2>/dev/null || true)"
  if [[ "$installed" != "$version"* ]]; then
    echo "build-libtorch2: torch==$version (with its CUDA, cuDNN and NCCL wheels, ~4 GB) into $venv"
    [[ -x "$venv/bin/python" ]] || /usr/bin/python3 -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check "torch==$version"
  fi
  libtorch="$("$venv/bin/python" -c "$find_torch")"
fi

cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$libtorch" |
  grep -E '^-- facetrain:' || true
ninja -C "$build_dir" -j "${FACETRAIN_BUILD_JOBS:-$(nproc)}" "$@"
