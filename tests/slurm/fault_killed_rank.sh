#!/usr/bin/env bash
# tests/slurm/fault_killed_rank.sh FACETRAIN: a rank that dies ends the whole job within seconds, with a
# message naming it. Rank 1 of a 2-rank mpirun run gets SIGKILL mid-run; rank 0 is then blocked in (or about
# to enter) a collective. The collective watchdog is set to 600 s, so only the launcher noticing the death
# can end the job in time: the test asserts the job is gone within 20 s and that mpirun named rank 1.
source "$(dirname "$0")/lib.sh"

make_store "$WORK/tiny.h5"
write_config "$WORK/run.pbtxt" "$WORK/tiny.h5" "$WORK/run" 100000 0 "distributed { collective_timeout_s: 600 }"
setsid "${MPIRUN[@]}" "$BIN" train --config "$WORK/run.pbtxt" --threads 1 --quiet > "$WORK/run.log" 2>&1 &
mpirun_pid=$!
CLEANUPS+=("kill_session $mpirun_pid")
wait_for_step "$WORK/run/metrics.jsonl" 3 120 "$mpirun_pid"

# The ranks are mpirun's children; rank 1 is the one whose environment says so.
rank_pid() {
  local p
  for p in $(pgrep -P "$mpirun_pid"); do
    if tr '\0' '\n' < "/proc/$p/environ" 2>/dev/null | grep -qx "OMPI_COMM_WORLD_RANK=$1"; then echo "$p"; return; fi
  done
}
rank0=$(rank_pid 0)
rank1=$(rank_pid 1)
{ [ -n "$rank0" ] && [ -n "$rank1" ]; } || fail "cannot find the rank processes under mpirun $mpirun_pid"
say "step $(last_step "$WORK/run/metrics.jsonl") reached; kill -9 rank 1 (pid $rank1)"
t_kill=$(now)
kill -9 "$rank1"

# Give the launcher 20 s (the watchdog would take 600 s); stop waiting after that.
for _ in $(seq 200); do kill -0 "$mpirun_pid" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$mpirun_pid" 2>/dev/null; then
  cat "$WORK/run.log"
  fail "the job still runs 20 s after rank 1 was killed: a survivor waits in a collective"
fi
rc=0
wait "$mpirun_pid" || rc=$?
dt=$(elapsed "$t_kill")
say "the job ended ${dt} s after the kill (mpirun exit $rc)"
! alive "$rank0" || fail "rank 0 (pid $rank0) outlived mpirun"
[ "$rc" != 0 ] || { cat "$WORK/run.log"; fail "mpirun exited 0 after a rank was killed"; }
grep -Eq "rank 1 .*(signal 9|Killed)" "$WORK/run.log" ||
  { cat "$WORK/run.log"; fail "no message naming rank 1 and its signal"; }
say "PASS: job ended ${dt} s after rank 1 was killed (mpirun exit $rc): $(grep -E -m1 'rank 1 .*(signal 9|Killed)' "$WORK/run.log")"
