#!/usr/bin/env bash
# tests/slurm/slurm_array_requeue.sh FACETRAIN: a job array on a real Slurm (slurm-local). `facetrain submit
# --array 0-1` renders slurm/train.sbatch; each task trains in its own run directory (RUN_DIR/task-<id>,
# data.seed=<id>), 1 rank each so both run at once. Every first start finds no checkpoint and starts cleanly
# ("starting from scratch"); task 1 alone is preempted (USR1 to its batch shell), checkpoints, requeues into
# its own run directory and resumes there; task 0 is never restarted; both finish at the configured step.
# Exits 77 (skip) where Slurm cannot start.
source "$(dirname "$0")/lib.sh"

require_local_slurm

STEPS=40
PREEMPT_AFTER=8
make_store "$WORK/tiny.h5"
start_local_slurm 6937 6938

write_config "$WORK/tiny.pbtxt" "$WORK/tiny.h5" "$WORK/run" "$STEPS" 5
cd "$WORK" || exit 1
"$BIN" submit --config "$WORK/tiny.pbtxt" --cpu --tasks-per-node 1 --cpus-per-task 1 --time 00:10:00 --array 0-1 \
  --output-script "$WORK/job.sbatch" --submit > "$WORK/submit.out" 2>&1 || { cat "$WORK/submit.out"; fail "submit failed"; }
job=$(awk '/^Submitted batch job/ { print $4 }' "$WORK/submit.out")
[ -n "$job" ] || { cat "$WORK/submit.out"; fail "no job id in the output of facetrain submit"; }
say "submitted array job $job (tasks 0, 1)"

task_field() { scontrol show job "${job}_$1" 2>/dev/null | tr ' ' '\n' | sed -n "s/^$2=//p" | head -n 1; }
out_of() { echo "$WORK/tiny-vit-${job}_$1.out"; }
show() { for t in 0 1; do scontrol show job "${job}_$t" || true; echo "--- $(out_of $t)"; cat "$(out_of $t)" 2>/dev/null || true; done; }

end=$((SECONDS + 300))
while [ "$(last_step "$WORK/run/task-1/metrics.jsonl")" -lt "$PREEMPT_AFTER" ]; do
  [ "$SECONDS" -lt "$end" ] || { show; fail "task 1 did not reach step $PREEMPT_AFTER in 300 s"; }
  sleep 0.2
done
say "task 1 at step $(last_step "$WORK/run/task-1/metrics.jsonl"): scancel -b -s USR1 ${job}_1"
scancel -b -s USR1 "${job}_1"

end=$((SECONDS + 300))
until [ "$(task_field 0 JobState)" = COMPLETED ] && [ "$(task_field 1 JobState)" = COMPLETED ]; do
  for t in 0 1; do
    case $(task_field $t JobState) in
      FAILED|CANCELLED|TIMEOUT|NODE_FAIL|OUT_OF_MEMORY|PREEMPTED|BOOT_FAIL|DEADLINE) show; fail "task $t ended as $(task_field $t JobState)" ;;
    esac
  done
  [ "$SECONDS" -lt "$end" ] || { show; fail "the array did not complete in 300 s"; }
  sleep 1
done

[ "$(task_field 0 Restarts)" = 0 ] || { show; fail "task 0 was restarted, only task 1 was preempted"; }
[ "$(task_field 1 Restarts)" -ge 1 ] || { show; fail "task 1 was not requeued"; }
for t in 0 1; do
  grep -q "starting from scratch" "$(out_of $t)" || { show; fail "task $t's first start did not start cleanly"; }
  [ "$(last_step "$WORK/run/task-$t/metrics.jsonl")" = "$STEPS" ] || { show; fail "task $t did not finish at step $STEPS"; }
done
grep -q "stop requested (SIGUSR1): checkpointing at step" "$(out_of 1)" || { show; fail "task 1 did not checkpoint"; }
resumed=$(sed -n 's/.*resumed from \(.*\) at step \([0-9]*\).*/\1 \2/p' "$(out_of 1)" | head -n 1)
[[ $resumed == "$WORK/run/task-1/checkpoints/"* ]] || { show; fail "task 1 resumed from '$resumed', not its own run directory"; }
! grep -q "resumed from" "$(out_of 0)" || { show; fail "task 0 resumed although it never stopped"; }
say "PASS: both tasks started from scratch in their own run directories; task 1 preempted, requeued (Restarts=$(task_field 1 Restarts)) and resumed from $resumed; both finished at step $STEPS"
