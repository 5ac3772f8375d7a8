#!/usr/bin/env bash
# tests/slurm/fault_kill_checkpoint.sh FACETRAIN: no partial checkpoint ever replaces a good one. A 2-rank run
# that checkpoints every step is SIGKILLed whole (mpirun and both ranks at once, like a node failure) 8 times, at
# random moments and, every second time, the instant a checkpoint write begins. Each restart with --resume auto
# must resume from the newest checkpoint on disk with no file skipped as damaged, and the finished run must log
# steps 1..N once each with the losses of a run never killed. The random moments come from a fixed seed (1,
# printed), so every run of the suite draws the same ones; FACETRAIN_FAULT_SEED=N draws others.
source "$(dirname "$0")/lib.sh"
HERE=$(cd "$(dirname "$0")" && pwd)

# 60 steps leave room for 8 attempts of about 5 steps each; a write-time kill needs a few steps left to catch.
STEPS=60
KILLS=${FACETRAIN_FAULT_KILLS:-8}
SEED=${FACETRAIN_FAULT_SEED:-1}
RANDOM=$SEED
say "seed $SEED ($KILLS kills; FACETRAIN_FAULT_SEED=N draws other moments)"

run_reference "$STEPS" 0
write_config "$WORK/run.pbtxt" "$WORK/tiny.h5" "$WORK/run" "$STEPS" 1
metrics=$WORK/run/metrics.jsonl
ckpts=$WORK/run/checkpoints

# newest_on_disk: the step of the newest file named like a finished checkpoint (0 when none).
newest_on_disk() {
  local f s newest=0
  for f in "$ckpts"/checkpoint-[0-9]*.ckpt; do
    [ -e "$f" ] || continue
    s=${f##*/checkpoint-}
    s=$((10#${s%.ckpt}))
    if [ "$s" -gt "$newest" ]; then newest=$s; fi
  done
  echo "$newest"
}

# check_resume LOG EXPECTED_STEP: the attempt in LOG resumed from EXPECTED_STEP's checkpoint (or started
# fresh when it is 0) and skipped no checkpoint file as damaged.
check_resume() {
  if grep -E "resume: .*skipped" "$1"; then fail "a checkpoint with a final name was damaged (lines above)"; fi
  if [ "$2" = 0 ]; then
    grep -q "starting from scratch" "$1" || { cat "$1"; fail "no checkpoint on disk, yet no fresh start"; }
  else
    grep -Eq "resumed from .*checkpoint-0*$2\.ckpt at step $2\b" "$1" ||
      { cat "$1"; fail "expected a resume from the newest checkpoint, step $2"; }
  fi
}

mid_write=0
previous=0
kills=0
for i in $(seq "$KILLS"); do
  expected=$(newest_on_disk)
  if [ "$expected" -ge $((STEPS - 2)) ] || { [ $((i % 2)) = 0 ] && [ "$expected" -ge $((STEPS - 8)) ]; }; then
    say "the run is nearly done after $kills kills; stop killing"
    break
  fi
  [ "$expected" -ge "$previous" ] || fail "newest checkpoint went back from step $previous to $expected"
  previous=$expected
  log=$WORK/attempt-$i.log
  setsid "${MPIRUN[@]}" "$BIN" train --config "$WORK/run.pbtxt" --resume auto --threads 1 --quiet > "$log" 2>&1 &
  pid=$!
  CLEANUPS+=("kill_session $pid")
  # Let this attempt resume (its metrics.jsonl is then trimmed) and train on its own before it is killed.
  end=$((SECONDS + 120))
  until grep -q "steps in all" "$log"; do
    kill -0 "$pid" 2>/dev/null || { cat "$log"; fail "attempt $i ended before training"; }
    [ "$SECONDS" -lt "$end" ] || { cat "$log"; fail "attempt $i did not start training in 120 s"; }
    sleep 0.1
  done
  if [ $((i % 2)) = 0 ]; then
    wait_for_step "$metrics" $((expected + 1)) 120 "$pid"
    # Every second attempt dies the instant its next checkpoint write begins (inotify on the .partial file).
    rm -f "$WORK/armed"
    # shellcheck disable=SC2046  # one pid per word
    "$PY" "$HERE/kill_on_write.py" "$ckpts" 60 "$WORK/armed" $(ps -o pid= -s "$pid") > "$WORK/killed-on" &
    watcher=$!
    until [ -e "$WORK/armed" ]; do kill -0 "$watcher" 2>/dev/null || break; sleep 0.02; done
    wait "$watcher" || fail "attempt $i: no checkpoint write to kill within 60 s"
    how="during the write of $(cat "$WORK/killed-on")"
  else
    # A random moment: 2-3 steps into the attempt, then a random fraction of a step (measured right now, as
    # this machine's speed varies), so the progress per attempt stays small whatever the speed. Not 1 step:
    # the first step's time would be measured from the previous attempt's last step, restart included (a
    # second or more, long enough for the whole run to finish before the kill).
    target=$((expected + 2 + RANDOM % 2))
    wait_for_step "$metrics" "$target" 120 "$pid"
    delay=$(awk -v r="$RANDOM" -v s="$(step_time "$metrics" "$target")" 'BEGIN { printf "%.3f", s * r / 32768 }')
    sleep "$delay"
    how="${delay} s after step $target"
  fi
  # The whole session at once, like a node failure: mpirun and both ranks (Open MPI gives each rank its own
  # process group, so a group kill would miss them; the session holds them all).
  kill_session "$pid"
  { wait "$pid"; } 2>/dev/null || true  # (no "Killed" job notice)
  for _ in $(seq 50); do [ -z "$(session_alive "$pid")" ] && break; sleep 0.1; done
  [ -z "$(session_alive "$pid")" ] || fail "processes of attempt $i survived SIGKILL: $(session_alive "$pid")"
  kills=$((kills + 1))
  check_resume "$log" "$expected"
  if compgen -G "$ckpts/*.partial" > /dev/null; then mid_write=$((mid_write + 1)); fi
  say "attempt $i: resumed at step $expected, killed $how, at logged step $(last_step "$metrics"); newest checkpoint now $(newest_on_disk)"
done

[ "$kills" -ge 4 ] || fail "only $kills kills landed before the run finished (steps too fast for the delays?)"

# The last attempt runs to the end.
expected=$(newest_on_disk)
"${MPIRUN[@]}" "$BIN" train --config "$WORK/run.pbtxt" --resume auto --threads 1 --quiet > "$WORK/final.log" 2>&1 ||
  { cat "$WORK/final.log"; fail "the final attempt failed"; }
check_resume "$WORK/final.log" "$expected"
check_losses "$metrics" "$WORK/reference/metrics.jsonl" "$STEPS"
say "PASS: $kills kills ($mid_write left a .partial file, i.e. landed mid-write); every restart found a complete checkpoint"
