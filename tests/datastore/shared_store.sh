#!/usr/bin/env bash
# A store on a shared file system: readers take no file lock (flock fails or hangs on NFS/Lustre, h5py's
# "unable to lock file"), so 2 ranks train from a store that another process holds an exclusive flock on;
# and while another process has the store open for WRITING (h5py, mode r+), 2 ranks refuse it with one clear
# line, exit 2 and no run directory, instead of reading a store in flux. Once the writer closes, it trains.
# Usage: shared_store.sh FACETRAIN_BINARY
source "$(dirname "$0")/../lib/bad_input.sh" "$1" 2
set -e
py=/usr/bin/python3
"$ft" synth --output "$work/s.h5" --count 200 --size 16 --seed 1 --quiet
source "$(dirname "$0")/../lib/run_config.sh"
vit_config "$work/run.pbtxt" vit16 "$work/s.h5" 16 "" \
  'schedule { max_steps: 2 }' "logging { run_dir: \"$work/r\" }"
mpirun_=(mpirun --allow-run-as-root --oversubscribe --bind-to none -np 2)
hold() {  # hold MODE: a background process that holds the store (flock | write) until killed
  $py - "$work/s.h5" "$1" "$work/held" <<'PY' &
import fcntl, signal, sys, time
path, mode, flag = sys.argv[1:4]
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # exit cleanly: h5py closes the file, clearing its write flag
if mode == "flock":
    f = open(path, "rb")
    fcntl.flock(f, fcntl.LOCK_EX)
else:
    import h5py
    f = h5py.File(path, "r+", locking=False)
open(flag, "w").close()
time.sleep(300)
PY
  holder=$!
  for _ in $(seq 1 100); do [[ -f $work/held ]] && break; sleep 0.1; done
  [[ -f $work/held ]] || { echo "FAIL: the holder did not start"; exit 1; }
}
release() { kill "$holder"; wait "$holder" 2>/dev/null || true; rm -f "$work/held"; }

# 1. An exclusive flock held elsewhere (a lock HDF5's own locking would wait on or fail with).
hold flock
set +e; h5dump -H "$work/s.h5" > "$work/h5dump.log" 2>&1; dump=$?; set -e
"${mpirun_[@]}" "$ft" train --config "$work/run.pbtxt" --threads 1 --quiet > "$work/a.log" 2>&1 ||
  { cat "$work/a.log"; echo "FAIL: 2 ranks could not read a store another process holds a flock on"; exit 1; }
release
rm -rf "$work/r"
echo "ok   2 ranks trained from a store under another process's exclusive flock (h5dump, which locks: exit $dump)"

# 2. Open for writing elsewhere: one line, exit 2, no run directory; then, closed, it trains. (A writer
# that died keeps the flag set: `h5clear -s` clears it, as the error says.)
hold write
set +e
expect store-open-for-write "s.h5 is open for writing in another process" -- \
  "$ft" train --config "$work/run.pbtxt" --threads 1 --quiet
set -e
release
"${mpirun_[@]}" "$ft" train --config "$work/run.pbtxt" --threads 1 --quiet > "$work/b.log" 2>&1 ||
  { cat "$work/b.log"; echo "FAIL: the store did not train once the writer had closed it"; exit 1; }
echo "ok   trains once the writer has closed the store"
exit $fail
