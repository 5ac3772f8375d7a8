#!/usr/bin/env bash
# The collective flight recorder on 3 ranks (RUN_DIR/flight/rank-R.ring, `facetrain doctor`):
#  - a hung rank (rank 1 stops before step 6; collective timeout 3 s): the aborting ranks print the diagnosis
#    and `facetrain doctor RUN_DIR` names the first collective the ranks diverged at (the gradient all-reduce
#    of step 6), ranks 0 and 2 in it, rank 1 not, and rank 1's last collective (step 5);
#  - a killed rank (rank 1 SIGKILLed before step 6): the same diagnosis from the rings the dead rank left;
#  - a healthy run: no divergence; a folder without rings: one line, exit 2;
#  - a run stopped on 3 ranks and resumed on 2 to a healthy end: doctor reads the newest attempt's rings (2
#    ranks), leaves out rank 2's ring of the first attempt, says "no divergence" and that the processes are gone.
# Usage: flight_recorder.sh FACETRAIN_BINARY
source "$(dirname "$0")/../../lib/bad_input.sh" "$1" 1
set -e
mpirun_=(mpirun --allow-run-as-root --oversubscribe --bind-to none -np 3)
"$ft" synth --output "$work/s.h5" --count 400 --size 16 --seed 3 --quiet
source "$(dirname "$0")/../../lib/run_config.sh"
vit_config "$work/a.pbtxt" vit16 "$work/s.h5" 8 "" \
  'schedule { max_steps: 100000 }' 'distributed { collective_timeout_s: 3 }' "logging { run_dir: \"$work/unused\" }"
expect_diagnosis() {  # expect_diagnosis NAME TEXT: rank 1 missing from step 6's gradient all-reduce
  grep -Eq "^first divergence: gradient #[0-9]+ 'allreduce of gradient bucket 1 of [0-9]+ .*' at step 6: ranks 0, 2 entered it and never saw it complete; rank 1 never reached it$" <<<"$2" ||
    { echo "$2"; echo "FAIL: $1: no divergence at step 6 naming ranks 0, 2 in it and rank 1 not"; exit 1; }
  grep -Eq "^  rank 1's last collective: gradient #[0-9]+ .* at step 5, completed" <<<"$2" ||
    { echo "$2"; echo "FAIL: $1: rank 1's last collective (step 5) not named"; exit 1; }
  echo "ok   $1: $(grep '^first divergence' <<<"$2" | cut -c1-150)..."
}

# failed_run NAME FAULT: the run with rank 1 given FAULT (STALL or KILL) before step 6 must end (not 0, not
# the 120 s timeout), its log in $work/NAME.log and its run directory $work/NAME.
failed_run() {
  local code=0
  env "FACETRAIN_FAULT_$2_RANK=1" "FACETRAIN_FAULT_$2_STEP=6" timeout 120 "${mpirun_[@]}" "$ft" train \
    --config "$work/a.pbtxt" --threads 1 --quiet --set logging.run_dir="$work/$1" > "$work/$1.log" 2>&1 || code=$?
  [[ $code -ne 0 && $code -ne 124 ]] || { cat "$work/$1.log"; echo "FAIL: $1 run exit $code"; exit 1; }
}

# 1. Hung rank: the watchdog aborts; the aborting ranks print the diagnosis; doctor repeats it.
failed_run hung STALL
grep -q "^\[rank [02]\] flight recorder: first divergence: gradient .* at step 6: .*rank 1 never reached it" "$work/hung.log" ||
  { cat "$work/hung.log"; echo "FAIL: no flight-recorder diagnosis printed at the abort"; exit 1; }
expect_diagnosis "hung rank, doctor" "$("$ft" doctor "$work/hung")"

# 2. Killed rank.
failed_run killed KILL
grep -q "rank 1 dies (SIGKILL) before step 6" "$work/killed.log" || { cat "$work/killed.log"; echo "FAIL: no kill"; exit 1; }
expect_diagnosis "killed rank, doctor" "$("$ft" doctor "$work/killed")"

# 3. A healthy run, and a folder with no rings.
"${mpirun_[@]}" "$ft" train --config "$work/a.pbtxt" --threads 1 --quiet --set logging.run_dir="$work/ok" \
  --set schedule.max_steps=5 > "$work/ok.log" 2>&1 || { cat "$work/ok.log"; echo "FAIL: healthy run"; exit 1; }
healthy=$("$ft" doctor "$work/ok")
grep -q "^3 rank(s) of 3, [0-9]* collective records; no divergence" <<<"$healthy" ||
  { echo "$healthy"; echo "FAIL: a healthy run is not 'no divergence'"; exit 1; }
echo "ok   healthy run: $(head -1 <<<"$healthy")"

# 4. Generations: rank 2's ring of the 3-rank attempt stays behind the 2-rank resume.
code=0
env FACETRAIN_FAULT_SIGNAL_RANK=0 FACETRAIN_FAULT_SIGNAL_STEP=3 "${mpirun_[@]}" "$ft" train --config "$work/a.pbtxt" \
  --threads 1 --quiet --set logging.run_dir="$work/gen" --set schedule.max_steps=8 > "$work/gen1.log" 2>&1 || code=$?
[[ $code -eq 75 ]] || { cat "$work/gen1.log"; echo "FAIL: 3-rank attempt exit $code, expected 75"; exit 1; }
[[ -f "$work/gen/flight/rank-2.ring" ]] || { echo "FAIL: no rank-2 ring after the 3-rank attempt"; exit 1; }
mpirun --allow-run-as-root --oversubscribe --bind-to none -np 2 "$ft" train --config "$work/a.pbtxt" --threads 1 \
  --quiet --set logging.run_dir="$work/gen" --set schedule.max_steps=8 --resume auto > "$work/gen2.log" 2>&1 ||
  { cat "$work/gen2.log"; echo "FAIL: the resume on 2 ranks"; exit 1; }
resumed=$("$ft" doctor "$work/gen")
grep -q "^2 rank(s) of 2, [0-9]* collective records; no divergence" <<<"$resumed" ||
  { echo "$resumed"; echo "FAIL: the 2-rank resume is not '2 rank(s) of 2 ... no divergence'"; exit 1; }
grep -q "^attempt started .* UTC on 2 ranks; left out the rings of an earlier attempt (3 ranks): rank 2$" <<<"$resumed" ||
  { echo "$resumed"; echo "FAIL: rank 2's ring of the first attempt not named as left out"; exit 1; }
grep -q "^processes on this host (.*): ranks 0, 1 gone$" <<<"$resumed" ||
  { echo "$resumed"; echo "FAIL: the finished ranks' processes not named gone"; exit 1; }
echo "ok   3 -> 2 resume: $(head -2 <<<"$resumed" | tr '\n' ' ')"
mkdir -p "$work/empty"
set +e
expect doctor-no-rings "empty.*no rank-\*\.ring files" -- "$ft" doctor "$work/empty"
exit $fail
