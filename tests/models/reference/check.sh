#!/usr/bin/env bash
# Runs the reference cross-check: timm/torchvision write their outputs (make_reference.py, in the test-only
# environment .venv-torch that tools/scripts/build-libtorch2.sh makes), then the C++ test compares.
# Exits 77 (ctest: skipped) where that environment or its timm/torchvision is missing.
# Usage: check.sh PROJECT_ROOT TEST_BINARY
set -euo pipefail
py=$1/.venv-torch/bin/python
if ! "$py" -c "import timm, torchvision, safetensors" 2>/dev/null; then
  echo "skip: no timm/torchvision in $1/.venv-torch (tools/scripts/build-libtorch2.sh installs them)"
  exit 77
fi
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
"$py" "$(dirname "$0")/make_reference.py" "$dir"
FACETRAIN_REFERENCE_DIR=$dir "$2"
