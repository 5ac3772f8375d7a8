#!/usr/bin/env bash
# Runs the reference cross-check: timm/torchvision write their outputs (make_reference.py, in the test-only
# environment .venv-torch that tools/scripts/build-libtorch2.sh makes), then the C++ test compares.
# Exits 77 (ctest: skipped) where that environment or its timm/torchvision is missing; under CI=true, whose
# test.sh --full makes it, that is a failure (tests/lib/skip.sh).
# Usage: check.sh PROJECT_ROOT TEST_BINARY
set -euo pipefail
py=$1/.venv-torch/bin/python
source "$(dirname "$0")/../../lib/skip.sh"
if ! "$py" -c "import timm, torchvision, safetensors" 2>/dev/null; then
  skip_unless_ci "no timm/torchvision in $1/.venv-torch (bash tools/scripts/test.sh --full installs them)"
fi
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
"$py" "$(dirname "$0")/make_reference.py" "$dir"
FACETRAIN_REFERENCE_DIR=$dir bash "$(dirname "$0")/../../lib/gtest_run.sh" "$2"
