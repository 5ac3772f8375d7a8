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
rank1=$(rank_pid 1)
[ -n "$rank1" ] || fail "cannot find rank 1 among the children of mpirun $mpirun_pid"
say "step $(last_step "$WORK/run/metrics.jsonl") reached; kill -9 rank 1 (pid $rank1)"
t_kill=$(now)
kill -9 "$rank1"

# The job is over when no process of its session is left (mpirun and rank 0). Give it 20 s: the watchdog
# would take 600 s, so only the launcher noticing the death can end it in time.
for _ in $(seq 200); do [ -z "$(session_alive "$mpirun_pid")" ] && break; sleep 0.1; done
if [ -n "$(session_alive "$mpirun_pid")" ]; then
  ps -o pid,stat,wchan,cmd -s "$mpirun_pid" || true
  cat "$WORK/run.log"
  fail "processes still run 20 s after rank 1 was killed: a survivor waits in a collective"
fi
dt=$(elapsed "$t_kill")
rc=0
wait "$mpirun_pid" || rc=$?
say "the job ended ${dt} s after the kill (mpirun exit $rc)"
[ "$rc" != 0 ] || { cat "$WORK/run.log"; fail "mpirun exited 0 after a rank was killed"; }
grep -Eq "rank 1 .*(signal 9|Killed)" "$WORK/run.log" ||
  { cat "$WORK/run.log"; fail "no message naming rank 1 and its signal"; }
say "PASS: mpirun named the dead rank: $(grep -E -m1 'rank 1 .*(signal 9|Killed)' "$WORK/run.log")"
