#!/usr/bin/env bash
# Installs every Debian 12 package facetrain needs (only what is missing), including OpenBLAS so LibTorch's
# BLAS calls leave the reference implementation (about 18x faster matmul on this class of machine).
set -euo pipefail

packages=(
  build-essential cmake ninja-build ccache pkg-config
  libtorch-dev libopenblas0-pthread
  libopenmpi-dev openmpi-bin
  libopencv-dev opencv-data
  libhdf5-dev hdf5-tools
  libprotobuf-dev protobuf-compiler
  libcxxopts-dev libgtest-dev nlohmann-json3-dev libgif-dev libjs-chart.js
  dataset-fashion-mnist
  python3-venv  # the project-local PyPI environments (build-libtorch2.sh's .venv-torch, the test-only .venv-test)
)
if [[ "${FACETRAIN_TEST_DEPS:-0}" == 1 ]]; then
  # Cross-checks and end-to-end tests: Debian's PyTorch/h5py
  # (never a runtime dependency), a real browser for the HTML report, the Slurm daemons + munge of the one-node
  # test cluster (../shared/slurm-local) and PMIx so srun --mpi=pmix works there, procps (ps, pgrep) for the
  # fault-injection tests, iproute2 (ip netns) for the two-node test, clang and its compiler-rt (libFuzzer,
  # ASan, UBSan) for the fuzz step of test.sh, clang-format for the format test (.clang-format).
  packages+=(python3-torch python3-h5py chromium slurmctld slurmd slurm-client munge libpmix-dev procps
             iproute2 clang libclang-rt-14-dev clang-format)
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "install-deps: installing ${missing[*]}"
  SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO=sudo
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
else
  echo "install-deps: all ${#packages[@]} packages present"
fi

# Test-only cross-checks from PyPI, in a project-local environment (never over Debian's Python, never used at
# run time): TensorBoard's own event-file reader. Not fatal: without PyPI the reader test skips and says why.
if [[ "${FACETRAIN_TEST_DEPS:-0}" == 1 ]]; then
  venv="$(cd "$(dirname "$0")/../.." && pwd)/.venv-test"
  if ! "$venv/bin/python" -c "import tensorboard" 2>/dev/null; then
    echo "install-deps: tensorboard (test-only) into $venv"
    /usr/bin/python3 -m venv "$venv" && "$venv/bin/pip" install -q --disable-pip-version-check tensorboard ||
      echo "install-deps: could not install tensorboard into $venv (PyPI unreachable?): its reader test will skip"
  fi
fi

