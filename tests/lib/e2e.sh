# The start of an end-to-end script called as SCRIPT FACETRAIN_BINARY [...]: strict mode, `ft` (the binary), a
# scratch `work` directory removed on exit (kept with KEEP=1), and the run configs' helpers (run_config.sh).
# shellcheck shell=bash
set -euo pipefail
ft=$1
work=$(mktemp -d)
trap '[[ -n "${KEEP:-}" ]] && echo "kept $work" || rm -rf "$work"' EXIT
source "$(dirname "${BASH_SOURCE[0]}")/run_config.sh"
