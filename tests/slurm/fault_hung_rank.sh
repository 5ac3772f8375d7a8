#!/usr/bin/env bash
# tests/slurm/fault_hung_rank.sh FACETRAIN: a rank that stops making progress (alive, but stuck, as in I/O) is
# caught by the collective watchdog of the others. The trainer's fault hook makes rank 1 sleep forever before
# step 6 (FACETRAIN_FAULT_STALL_RANK/STEP); with distributed.collective_timeout_s = 5 the job must abort
# within the timeout plus a few seconds, and rank 0's message must name the step (6), the operation (an
# allreduce / broadcast / barrier / gather, e.g. "allreduce of gradient bucket 1 of 1") and the missing rank 1.
source "$(dirname "$0")/lib.sh"

TIMEOUT_S=5
STALL_STEP=6
SLACK_S=10  # abort + teardown allowance beyond the timeout

make_store "$WORK/tiny.h5"
write_config "$WORK/run.pbtxt" "$WORK/tiny.h5" "$WORK/run" 100000 0 "distributed { collective_timeout_s: $TIMEOUT_S }"
FACETRAIN_FAULT_STALL_RANK=1 FACETRAIN_FAULT_STALL_STEP=$STALL_STEP \
  setsid "${MPIRUN[@]}" -x FACETRAIN_FAULT_STALL_RANK -x FACETRAIN_FAULT_STALL_STEP \
  "$BIN" train --config "$WORK/run.pbtxt" --threads 1 --quiet > "$WORK/run.log" 2>&1 &
mpirun_pid=$!
CLEANUPS+=("kill_session $mpirun_pid")

# The stall starts when rank 1 says so; the clock runs from there.
end=$((SECONDS + 120))
until grep -q "stalls before step $STALL_STEP" "$WORK/run.log"; do
  if ! kill -0 "$mpirun_pid" 2>/dev/null; then cat "$WORK/run.log"; fail "the run ended before the stall"; fi
  [ "$SECONDS" -lt "$end" ] || { cat "$WORK/run.log"; fail "rank 1 never stalled (is the fault hook built in?)"; }
  sleep 0.1
done
t_stall=$(now)
say "rank 1 stalls before step $STALL_STEP; collective timeout ${TIMEOUT_S} s"

limit=$(( (TIMEOUT_S + SLACK_S) * 10 ))
for _ in $(seq "$limit"); do kill -0 "$mpirun_pid" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$mpirun_pid" 2>/dev/null; then
  cat "$WORK/run.log"
  fail "the job still runs $((TIMEOUT_S + SLACK_S)) s after rank 1 stalled: no watchdog abort"
fi
rc=0
wait "$mpirun_pid" || rc=$?
dt=$(elapsed "$t_stall")
say "the job ended ${dt} s after the stall (mpirun exit $rc)"
[ "$rc" != 0 ] || { cat "$WORK/run.log"; fail "mpirun exited 0 although a rank hung"; }

# Rank 0's report: one line with the step, the operation and the rank(s) that did not arrive, e.g.
#   [rank 0] error: allreduce of gradient bucket 1 of 1 (174.5 kB) at step 6 did not complete within 5 s;
#   ranks that did not arrive: 1 (...)
line=$(grep -E '^\[rank 0\]' "$WORK/run.log" | grep -E "step $STALL_STEP\b" | head -n 1 || true)
[ -n "$line" ] || { cat "$WORK/run.log"; fail "no '[rank 0] ...' error line naming step $STALL_STEP"; }
echo "$line" | grep -Eiq "all-?reduce|broadcast|barrier|all-?gather|bucket" ||
  { cat "$WORK/run.log"; fail "the error line does not name the operation: $line"; }
echo "$line" | grep -Eq "(ranks?|rank\(s\)|arrive|missing):? \[?1([^0-9]|$)" ||
  { cat "$WORK/run.log"; fail "the error line does not name the missing rank 1: $line"; }
grep -Eq "did not arrive|missing|waiting for|timed out|timeout" <<< "$line" ||
  { cat "$WORK/run.log"; fail "the error line does not say it timed out: $line"; }
say "PASS: aborted ${dt} s after the stall (timeout ${TIMEOUT_S} s, mpirun exit $rc): $line"
