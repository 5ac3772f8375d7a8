# tests/lib/skip.sh: how a shell test skips (sourced). Exit 77 is ctest's "skipped" (SKIP_RETURN_CODE 77 on every
# shell test), never 0: a test that did not check anything must not read as passed.
#   skip REASON          a prerequisite this machine may lack (a GPU, ...): one line, exit 77
#   skip_unless_ci REASON  a prerequisite that CI provides (the Slurm daemons of slurm-local, network namespaces,
#                        the test-only PyPI environments): exit 77 on a developer's machine, but under CI=true a
#                        failure (exit 1), so that CI never passes without having run it
# shellcheck shell=bash
skip() { echo "SKIP${TEST_NAME:+ ($TEST_NAME)}: $*"; exit 77; }
skip_unless_ci() {
  if [[ "${CI:-}" == true ]]; then
    echo "FAIL${TEST_NAME:+ ($TEST_NAME)}: $* (CI=true: CI provides this, so it must run there, not skip)"
    exit 1
  fi
  skip "$@"
}
