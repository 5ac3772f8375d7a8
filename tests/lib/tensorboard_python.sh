# The test-only Python that has TensorBoard's own reader (tools/scripts/install-deps.sh with FACETRAIN_TEST_DEPS=1
# makes SOURCE_DIR/.venv-test): sourced as `source .../tensorboard_python.sh SOURCE_DIR`, it sets `py`, or skips
# the test (a failure under CI=true: lib/skip.sh).
# shellcheck shell=bash
py="$1/.venv-test/bin/python"
source "$1/tests/lib/skip.sh"
if ! [[ -x "$py" ]] || ! "$py" -c "import tensorboard" 2>/dev/null; then
  skip_unless_ci "no tensorboard in $1/.venv-test (tools/scripts/install-deps.sh with FACETRAIN_TEST_DEPS=1 makes it)"
fi
