#!/usr/bin/env bash
# Bad input to the commands that run on ranks besides train (eval *, bench step, bench allreduce): one line
# naming the flag or file, exit code 2; with RANKS > 1 under mpirun, still one line and no job abort
# (the launcher joins the setup agreement for a rank whose setup failed).
# Usage: bad_input.sh FACETRAIN_BINARY [RANKS]
source "$(dirname "$0")/../lib/bad_input.sh" "$@"
"$ft" synth --output "$work/faces.h5" --count 40 --size 16 > /dev/null 2>&1 || { echo "FAIL: synth"; exit 1; }
s=$work/faces.h5
expect metrics-flag "--bogus|bogus" -- "$ft" eval metrics --bogus
expect metrics-missing-flag "--checkpoint" -- "$ft" eval metrics --store "$s" --output "$work/m"
expect metrics-checkpoint "none.ckpt" -- "$ft" eval metrics --checkpoint "$work/none.ckpt" --store "$s" --output "$work/m"
expect metrics-tta "--tta" -- "$ft" eval metrics --checkpoint "$work/none.ckpt" --store "$s" --output "$work/m" --tta mirror
expect mine-store "none.h5" -- "$ft" eval mine --checkpoint "$work/none.ckpt" --store "$work/none.h5" --output "$work/m" --class 0
expect attention-batch "--batch-size" -- "$ft" eval attention --checkpoint "$work/none.ckpt" --store "$s" --output "$work/a" --batch-size 0
expect morph-checkpoint "none.ckpt" -- "$ft" eval morph --checkpoint "$work/none.ckpt" --store "$s" --output "$work/v" --indices 0,1
expect samples-count "--count" -- "$ft" eval samples --checkpoint "$work/none.ckpt" --output "$work/g" --count 0
# Fails on rank 0 only (the report is rank 0's work): the other ranks learn it in the agreement.
expect report-run "none" -- "$ft" eval report --run "$work/none" --output "$work/report.html"
expect bench-step-config "nothere.pbtxt" -- "$ft" bench step --config "$work/nothere.pbtxt"
expect bench-allreduce-factor "--factor" -- "$ft" bench allreduce --factor 1
exit $fail
