#!/usr/bin/env bash
# Builds facetrain against a current CUDA LibTorch 2.x into build-torch2/ (Release, Ninja, ccache), beside the
# default build/ against Debian's LibTorch 1.13. No GPU is needed to build: without one the binary trains on CPU
# and says so. Where the LibTorch comes from:
#   FACETRAIN_LIBTORCH=/path/to/libtorch   a LibTorch you have (pytorch.org's archive, or a torch/ folder of a
#                                          wheel): used as is, nothing is installed
#   otherwise                              the torch wheel from PyPI (FACETRAIN_TORCH_VERSION, default below)
#                                          into the project-local environment .venv-torch/, whose torch/
#                                          folder is a complete LibTorch with CUDA, cuDNN and NCCL beside it
# The CUDA toolkit (nvcc and headers, which LibTorch's CMake config asks for; the run-time CUDA and NCCL libraries
# stay the ones LibTorch itself loads, CMakeLists.txt): the first of FACETRAIN_CUDA_HOME (when set, the only one
# looked at), CUDA_HOME, CUDA_PATH, the nvcc on PATH and /usr/local/cuda whose major version is LibTorch's CUDA
# major version. A toolkit of another major version is named in one line with LibTorch's and not used. Without a
# fitting one, nvcc, the CUDA runtime and CCCL of LibTorch's CUDA version come from PyPI into .venv-torch (the
# cuda-toolkit packages, ~100 MB) and CMake is pointed at them.
# Usage: bash tools/scripts/build-libtorch2.sh [ninja targets...]   (default: everything)
#        bash tools/scripts/build-libtorch2.sh --prepare            (install LibTorch and the toolkit only)
set -euo pipefail
cd "$(dirname "$0")/../.."
source tools/scripts/lib/ccache-env.sh
version="${FACETRAIN_TORCH_VERSION:-2.15.0}"
build_dir="${FACETRAIN_TORCH2_BUILD_DIR:-build-torch2}"
venv="$PWD/.venv-torch"
prepare_only=0
if [[ "${1:-}" == --prepare ]]; then prepare_only=1; shift; fi
say() { echo "build-libtorch2: $*"; }
# The Debian packages of every build (compilers, CMake, MPI, OpenCV, HDF5, ...) and python3-venv: only what is missing.
bash tools/scripts/install-deps.sh

# 1. LibTorch
if [[ -n "${FACETRAIN_LIBTORCH:-}" ]]; then
  libtorch="$FACETRAIN_LIBTORCH"
  [[ -f "$libtorch/share/cmake/Torch/TorchConfig.cmake" ]] ||
    { say "FACETRAIN_LIBTORCH=$libtorch has no share/cmake/Torch/TorchConfig.cmake" >&2; exit 2; }
else
  # The spec finds torch/ without importing it (an import takes seconds and wants NumPy).
  find_torch='import importlib.util, os; s = importlib.util.find_spec("torch"); print(os.path.dirname(s.origin) if s else "")'
  installed="$("$venv/bin/python" -c 'import importlib.metadata as m; print(m.version("torch"))' 2>/dev/null || true)"
  if [[ "$installed" != "$version"* ]]; then
    say "torch==$version (with its CUDA, cuDNN and NCCL wheels, ~4 GB) into $venv"
    [[ -x "$venv/bin/python" ]] || /usr/bin/python3 -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check "torch==$version"
  fi
  libtorch="$("$venv/bin/python" -c "$find_torch")"
fi

# 2. LibTorch's CUDA version: torch/version.py of a wheel, build-version (2.x.y+cu128) of pytorch.org's archive.
torch_cuda=""
if [[ -f "$libtorch/version.py" ]]; then
  torch_cuda=$(sed -n "s/^cuda[^=]*= *'\([0-9.]*\)'.*/\1/p" "$libtorch/version.py")
elif [[ -f "$libtorch/build-version" ]] && grep -q '+cu[0-9]' "$libtorch/build-version"; then
  torch_cuda=$(sed -n 's/.*+cu\([0-9]*\)\([0-9]\)$/\1.\2/p' "$libtorch/build-version")
fi

# 3. A CUDA toolkit of LibTorch's major version (only for a CUDA LibTorch).
cuda_args=()
if [[ -n "$torch_cuda" ]]; then
  major=${torch_cuda%%.*}
  toolkit_version() {  # toolkit_version DIR: "13.0" for DIR/bin/nvcc of CUDA 13.0, nothing without one
    [[ -x "$1/bin/nvcc" ]] && "$1/bin/nvcc" --version 2>/dev/null | sed -n 's/.*release \([0-9]*\.[0-9]*\).*/\1/p'
  }
  if [[ -n "${FACETRAIN_CUDA_HOME+set}" ]]; then
    candidates=("$FACETRAIN_CUDA_HOME")
  else
    candidates=("${CUDA_HOME:-}" "${CUDA_PATH:-}")
    nvcc_on_path=$(command -v nvcc || true)
    [[ -n "$nvcc_on_path" ]] && candidates+=("$(dirname "$(dirname "$(readlink -f "$nvcc_on_path")")")")
    candidates+=(/usr/local/cuda)
  fi
  cuda_home="" seen=" "
  for dir in "${candidates[@]}"; do
    [[ -n "$dir" && -d "$dir" ]] || continue
    [[ "$seen" != *" $(readlink -f "$dir") "* ]] || continue  # CUDA_HOME, PATH and /usr/local/cuda often agree
    seen+="$(readlink -f "$dir") "
    found=$(toolkit_version "$dir" || true)
    [[ -n "$found" ]] || continue
    if [[ "${found%%.*}" == "$major" ]]; then
      cuda_home=$(readlink -f "$dir")
      say "CUDA toolkit $found at $cuda_home (LibTorch $version was built with CUDA $torch_cuda)"
      break
    fi
    say "the CUDA toolkit at $dir is CUDA $found, but LibTorch $version needs CUDA $major.x (built with $torch_cuda): not used"
  done
  if [[ -z "$cuda_home" ]]; then
    # PyPI's toolkit pieces of exactly LibTorch's CUDA: the cuda-toolkit metapackage the torch wheel pinned (its
    # extras nvcc, cudart, cccl), else the nvidia-cuda-* packages of that version (-cu12 names before CUDA 13).
    [[ -x "$venv/bin/python" ]] || /usr/bin/python3 -m venv "$venv"
    pinned=$("$venv/bin/python" -c 'import importlib.metadata as m; print(m.version("cuda-toolkit"))' 2>/dev/null || true)
    if [[ -n "$pinned" && "$pinned" == "$torch_cuda".* ]]; then
      pieces=("cuda-toolkit[nvcc,cudart,cccl]==$pinned")
    else
      suffix=""; ((major >= 13)) || suffix="-cu$major"
      pieces=("nvidia-cuda-nvcc$suffix==$torch_cuda.*" "nvidia-cuda-runtime$suffix==$torch_cuda.*"
              "nvidia-cuda-cccl$suffix==$torch_cuda.*")
    fi
    site=$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
    nvcc=$(ls "$site"/nvidia/*/bin/nvcc 2>/dev/null | head -1 || true)
    if [[ -z "$nvcc" || "$(toolkit_version "$(dirname "$(dirname "$nvcc")")" || true)" != "$torch_cuda" ]]; then
      say "no CUDA toolkit $major.x found: ${pieces[*]} from PyPI into $venv"
      "$venv/bin/pip" install -q --disable-pip-version-check "${pieces[@]}"
      nvcc=$(ls "$site"/nvidia/*/bin/nvcc 2>/dev/null | head -1 || true)
    fi
    [[ -n "$nvcc" ]] || { say "PyPI's CUDA $torch_cuda packages brought no nvcc (looked in $site/nvidia/*/bin)" >&2; exit 2; }
    root=$(dirname "$(dirname "$nvcc")")
    # The wheels ship versioned libraries only (libnvrtc.so.13); LibTorch's CMake config links the unversioned
    # names (libnvrtc.so, libcudart.so), which a toolkit installer makes: so are they made here.
    for lib in "$root"/lib/lib*.so.[0-9]*; do
      base=${lib%.so.*}.so
      [[ -e "$base" ]] || ln -s "$(basename "$lib")" "$base"
    done
    cuda_home=$root
    say "CUDA toolkit $(toolkit_version "$cuda_home") from PyPI at $cuda_home"
  fi
  # LibTorch's Caffe2Config finds CUDA through FindCUDA (CUDA_TOOLKIT_ROOT_DIR, CUDA_HOME) and enables the CUDA
  # language (CMAKE_CUDA_COMPILER); FindCUDAToolkit takes CUDAToolkit_ROOT.
  export CUDA_HOME="$cuda_home" CUDA_PATH="$cuda_home" PATH="$cuda_home/bin:$PATH"
  cuda_args=(-DCUDA_TOOLKIT_ROOT_DIR="$cuda_home" -DCUDAToolkit_ROOT="$cuda_home"
             -DCMAKE_CUDA_COMPILER="$cuda_home/bin/nvcc")
fi
((prepare_only)) && exit 0

# 4. Configure (the facetrain: lines say what was enabled) and build.
mkdir -p "$build_dir"
log="$build_dir/configure.log"
cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$libtorch" "${cuda_args[@]}" \
  > "$log" 2>&1 || { tail -40 "$log"; say "configure failed ($log)"; exit 1; }
grep -E '^-- (facetrain:|PyTorch: CUDA)' "$log" || true
cmake --build "$build_dir" -j "${FACETRAIN_BUILD_JOBS:-$(nproc)}" ${1:+--target "$@"}
