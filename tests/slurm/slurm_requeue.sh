#!/usr/bin/env bash
# tests/slurm/slurm_requeue.sh FACETRAIN: preemption -> checkpoint -> requeue -> resume on a real Slurm.
# `facetrain submit --cpu` renders slurm/train.sbatch and submits it (2 ranks) to the one-node slurm-local
# cluster; once the run has logged step 10 the batch shell gets SIGUSR1, exactly what --signal=B:USR1@120 or a
# preemption delivers. Checks: the ranks checkpointed, the script requeued the job (Restarts >= 1), the
# requeued job "resumed from" that checkpoint and finished at the configured step count, and its losses equal
# those of an uninterrupted `mpirun -np 2` run of the same config. Exits 77 (skip) where Slurm cannot start.
source "$(dirname "$0")/lib.sh"

require_local_slurm

STEPS=30
PREEMPT_AFTER=8
t_test=$(now)

# 1. The uninterrupted reference, outside Slurm: mpirun -np 2, one thread per rank (as the job's 1 CPU/task).
run_reference "$STEPS" 5

# 2. The cluster.
start_local_slurm 6927 6928

# 3. Submit the real script (CPU variant: no GPUs requested), 2 ranks x 1 CPU.
write_config "$WORK/tiny.pbtxt" "$WORK/tiny.h5" "$WORK/run" "$STEPS" 5
cd "$WORK" || exit 1
"$BIN" submit --config "$WORK/tiny.pbtxt" --cpu --tasks-per-node 2 --cpus-per-task 1 --time 00:10:00 \
  --output-script "$WORK/job.sbatch" --submit > "$WORK/submit.out" 2>&1 || { cat "$WORK/submit.out"; fail "submit failed"; }
job=$(awk '/^Submitted batch job/ { print $4 }' "$WORK/submit.out")
[ -n "$job" ] || { cat "$WORK/submit.out"; fail "no job id in the output of facetrain submit"; }
out="$WORK/tiny-vit-$job.out"
t_submit=$(now)
say "submitted job $job"

# job_field NAME: one field of `scontrol show job` (completed jobs stay visible for MinJobAge=300 s).
job_field() { scontrol show job "$job" 2>/dev/null | tr ' ' '\n' | sed -n "s/^$1=//p" | head -n 1; }
show_job_and_log() { scontrol show job "$job" || true; echo "--- $out"; cat "$out" 2>/dev/null || true; }

# 4. Preempt once the run is under way: USR1 to the batch shell only (scancel -b), as Slurm's --signal=B: does.
end=$((SECONDS + 300))
while [ "$(last_step "$WORK/run/metrics.jsonl")" -lt "$PREEMPT_AFTER" ]; do
  [ "$SECONDS" -lt "$end" ] || { show_job_and_log; fail "job $job did not reach step $PREEMPT_AFTER in 300 s"; }
  case $(job_field JobState) in PENDING|RUNNING|CONFIGURING) ;; *) show_job_and_log; fail "job $job ended early" ;; esac
  sleep 0.2
done
say "job $job reached step $(last_step "$WORK/run/metrics.jsonl") after $(elapsed "$t_submit") s: scancel -b -s USR1"
t_signal=$(now)
scancel -b -s USR1 "$job"

# 5. Wait (slow polling, not sbatch --wait) for the requeue and the final completion.
end=$((SECONDS + 300))
t_restart=""
while :; do
  state=$(job_field JobState)
  restarts=$(job_field Restarts)
  if [ -z "$t_restart" ] && [ "${restarts:-0}" -ge 1 ]; then
    t_restart=$(now)
    say "requeued $(elapsed "$t_signal") s after the signal (JobState=$state)"
  fi
  case $state in
    COMPLETED) break ;;
    FAILED|CANCELLED|TIMEOUT|NODE_FAIL|OUT_OF_MEMORY|PREEMPTED|BOOT_FAIL|DEADLINE)
      show_job_and_log; fail "job $job ended as $state" ;;
  esac
  [ "$SECONDS" -lt "$end" ] || { show_job_and_log; fail "job $job not COMPLETED 300 s after the signal"; }
  sleep 1
done
say "job $job COMPLETED $(elapsed "$t_signal") s after the signal, $(elapsed "$t_submit") s after submission"

# 6. What happened, from Slurm's view and the job's own log (--open-mode=append kept both starts).
restarts=$(job_field Restarts)
exit_code=$(job_field ExitCode)
[ "${restarts:-0}" -ge 1 ] || { show_job_and_log; fail "Restarts=$restarts: the job was not requeued"; }
[ "$exit_code" = "0:0" ] || { show_job_and_log; fail "ExitCode=$exit_code, expected 0:0"; }
grep -q "stop requested (SIGUSR1): checkpointing at step" "$out" ||
  { show_job_and_log; fail "the ranks did not report checkpointing on the signal"; }
grep -q "requeueing job $job" "$out" || { show_job_and_log; fail "the batch script did not requeue the job"; }
{ grep -q "(restart 0)" "$out" && grep -q "(restart 1)" "$out"; } ||
  { show_job_and_log; fail "the log lacks the first or the requeued start (--open-mode=append?)"; }
stopped_at=$(sed -n 's/.*checkpointing at step \([0-9]*\).*/\1/p' "$out" | head -n 1)
resumed_at=$(sed -n 's/.*resumed from .* at step \([0-9]*\).*/\1/p' "$out" | head -n 1)
[ -n "$resumed_at" ] || { show_job_and_log; fail "no 'resumed from' line: the requeued job did not resume"; }
[ "$resumed_at" = "$stopped_at" ] ||
  { show_job_and_log; fail "stopped at step $stopped_at but resumed at step $resumed_at"; }
{ [ "$resumed_at" -ge "$PREEMPT_AFTER" ] && [ "$resumed_at" -lt "$STEPS" ]; } ||
  fail "resumed at step $resumed_at: the signal did not land mid-run"
[ "$(last_step "$WORK/run/metrics.jsonl")" = "$STEPS" ] || fail "the run did not finish at step $STEPS"
check_losses "$WORK/run/metrics.jsonl" "$WORK/reference/metrics.jsonl" "$STEPS"
say "PASS: stopped and checkpointed at step $stopped_at, requeued (Restarts=$restarts), resumed at step" \
    "$resumed_at, finished at $STEPS; whole test $(elapsed "$t_test") s"
